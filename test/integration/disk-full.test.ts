import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { buildConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { buildApp } from '../../src/server/app.ts';
import { createServices } from '../../src/server/services.ts';
import type { BlobStore, PutOptions } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { createHttpClient } from '../../src/upstream/http-client.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import type { LogLine } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

/**
 * A filesystem store whose disk can be "filled": a put then reads part of its body and fails
 * with ENOSPC, as a write(2) on a full disk does. No root and no tmpfs needed.
 */
function fillableStore(inner: BlobStore): BlobStore & { full: boolean } {
  const state = { full: false };
  async function put(key: string, source: Readable | Buffer, options?: PutOptions) {
    if (!state.full) return inner.put(key, source, options);
    if (!Buffer.isBuffer(source)) {
      for await (const _ of source) break;
      source.destroy();
    }
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }
  // A Proxy, not a subclass: the store's private fields need `this` to be the store itself.
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'put') return put;
      if (property === 'full') return state.full;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
    set(_target, property, value) {
      if (property !== 'full') return false;
      state.full = value as boolean;
      return true;
    },
  }) as BlobStore & { full: boolean };
}

async function setup(t: TestContext) {
  const upstream = await startFakeUpstream({
    crates: [
      { name: 'fake-a', version: '0.1.0', padBytes: 300_000 },
      { name: 'fake-b', version: '0.2.0' },
    ],
  });
  t.after(() => upstream.close());
  const dir = await makeTempDir('disk-full');
  t.after(() => removeTempDir(dir));
  const inner = new FsBlobStore(dir);
  await inner.init();
  const store = fillableStore(inner);
  const clock = { ms: Date.now() };
  const logs: LogLine[] = [];
  const log = createLogger({
    level: 'info',
    format: 'json',
    destination: {
      write: (line: string) => logs.push(JSON.parse(line) as LogLine),
    } as unknown as NodeJS.WritableStream,
  });
  const config = buildConfig({
    port: 0,
    listen: '127.0.0.1',
    storageDir: dir,
    sparseUpstream: upstream.indexUrl,
  });
  const http = createHttpClient(config.timeouts);
  const deps = createServices({ config, log, store, http, now: () => clock.ms });
  const app = buildApp(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await app.close();
    await http.close();
  });
  const { port } = app.server.address() as { port: number };
  const url = (name: string, version: string) =>
    `http://127.0.0.1:${port}/api/v1/crates/${name}/${version}/download`;
  return { upstream, store, inner, clock, logs, url, deps };
}

const fullLines = (logs: LogLine[]) => logs.filter((line) => /storage is full/.test(line.msg));

describe('disk full', () => {
  test('passes verified crates through, uncached, and logs it once per minute', async (t) => {
    const { upstream, store, inner, logs, url } = await setup(t);
    store.full = true;
    for (const [name, version] of [
      ['fake-a', '0.1.0'],
      ['fake-b', '0.2.0'],
      ['fake-a', '0.1.0'],
    ]) {
      const response = await httpGet(url(name as string, version as string));
      assert.equal(response.status, 200, response.body.toString());
      assert.equal(response.headers['x-cargo-cacher-not-stored'], 'storage full');
      assert.deepEqual(response.body, upstream.crate(name as string, version as string).bytes);
    }
    assert.equal(await inner.stat('crates/fa/ke/fake-a/fake-a-0.1.0.crate'), undefined);
    assert.equal(fullLines(logs).length, 1, 'one line, not one per request');
    assert.equal(fullLines(logs)[0]?.level, 'error');
  });

  test('never delivers a whole crate that fails its checksum', async (t) => {
    const { upstream, store, url } = await setup(t);
    store.full = true;
    assert.equal((await httpGet(url('fake-b', '0.2.0'))).status, 200);
    upstream.setFault({ kind: 'corrupt' }, 'crate');
    const response = await httpGet(url('fake-a', '0.1.0'));
    const expected = upstream.crate('fake-a', '0.1.0').bytes.length;
    assert.ok(!response.complete || response.status !== 200, 'the response was cut short');
    assert.ok(response.body.length < expected, `${response.body.length} of ${expected} bytes`);
  });

  test('stores again once space is back, and says so', async (t) => {
    const { store, clock, logs, url } = await setup(t);
    store.full = true;
    assert.equal(
      (await httpGet(url('fake-a', '0.1.0'))).headers['x-cargo-cacher-not-stored'],
      'storage full',
    );
    store.full = false;
    // Within the minute nothing is stored, so a full disk is not hammered with doomed writes.
    assert.ok((await httpGet(url('fake-a', '0.1.0'))).headers['x-cargo-cacher-not-stored']);
    clock.ms += 61_000;
    const stored = await httpGet(url('fake-a', '0.1.0'));
    assert.equal(stored.headers['x-cache-status'], 'MISS');
    assert.equal(stored.headers['x-cargo-cacher-not-stored'], undefined);
    assert.equal((await httpGet(url('fake-a', '0.1.0'))).headers['x-cache-status'], 'HIT');
    assert.ok(logs.some((line) => /storage has space again/.test(line.msg)));
  });
});
