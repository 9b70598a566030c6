import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { buildConfig } from '../../src/config.ts';
import { catalogueStore, createServices } from '../../src/instance.ts';
import { createLogger } from '../../src/logger.ts';
import { buildApp } from '../../src/server/app.ts';
import type { BlobStore, PutOptions } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { createS3Client } from '../../src/storage/s3-client.ts';
import { createHttpClient } from '../../src/upstream/http-client.ts';
import { sha256Hex } from '../helpers/crate-pack.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import type { LogLine } from '../helpers/proxy.ts';
import { startS3 } from '../helpers/s3.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

/**
 * A filesystem store whose writes can be made to fail with an errno: a put then reads part of
 * its body and fails, as a write(2) on a full disk (ENOSPC) or a read-only one (EROFS, EACCES)
 * does. No root and no tmpfs needed; real permissions are in storage-unwritable.test.ts.
 */
function failingStore(inner: BlobStore): BlobStore & { failWith: string | undefined } {
  const state: { failWith: string | undefined } = { failWith: undefined };
  async function put(key: string, source: Readable | Buffer, options?: PutOptions) {
    const code = state.failWith;
    if (code === undefined) return inner.put(key, source, options);
    if (!Buffer.isBuffer(source)) {
      for await (const _ of source) break;
      source.destroy();
    }
    const path = `${inner.location}/tmp/0000.tmp`;
    throw Object.assign(new Error(`${code}: write failed, open '${path}'`), {
      code,
      syscall: 'open',
      path,
    });
  }
  // A Proxy, not a subclass: the store's private fields need `this` to be the store itself.
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'put') return put;
      if (property === 'failWith') return state.failWith;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
    set(_target, property, value) {
      if (property !== 'failWith') return false;
      state.failWith = value as string | undefined;
      return true;
    },
  }) as BlobStore & { failWith: string | undefined };
}

/** Commands that write objects: a bucket policy denying writes refuses exactly these. */
const S3_WRITES = new Set([
  'PutObjectCommand',
  'CopyObjectCommand',
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
]);

/** An S3 client whose writes the bucket refuses (403 AccessDenied) while `refuse()` says so. */
function refusingWrites(client: S3Client, refuse: () => boolean): S3Client {
  const send = (command: object, ...rest: unknown[]) => {
    if (!refuse() || !S3_WRITES.has(command.constructor.name)) {
      return (client.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
    }
    return Promise.reject(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'Access Denied',
      }),
    );
  };
  return new Proxy(client, {
    get(target, property) {
      if (property === 'send') return send;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A store that still has to be made ready, as both stores do. */
type UninitialisedStore = BlobStore & { init(): Promise<void> };

async function setup(t: TestContext, openInner?: () => Promise<UninitialisedStore>) {
  const upstream = await startFakeUpstream({
    crates: [
      { name: 'fake-a', version: '0.1.0', padBytes: 300_000 },
      { name: 'fake-b', version: '0.2.0' },
    ],
  });
  t.after(() => upstream.close());
  const dir = await makeTempDir('disk-full');
  t.after(() => removeTempDir(dir));
  const inner = openInner ? await openInner() : new FsBlobStore(dir);
  await inner.init();
  const store = failingStore(inner);
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
  const storage = catalogueStore(store, dir, log, { now: () => clock.ms });
  const deps = createServices({ config, log, storage, http, now: () => clock.ms });
  const app = buildApp(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await app.close();
    await http.close();
    storage.catalogue.close();
  });
  const { port } = app.server.address() as { port: number };
  const url = (name: string, version: string) =>
    `http://127.0.0.1:${port}/api/v1/crates/${name}/${version}/download`;
  return { upstream, store, inner, clock, logs, url, deps, port };
}

const fullLines = (logs: LogLine[]) => logs.filter((line) => /storage is full/.test(line.msg));

describe('disk full', () => {
  test('passes verified crates through, uncached, and logs it once per minute', async (t) => {
    const { upstream, store, inner, logs, url } = await setup(t);
    store.failWith = 'ENOSPC';
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
    store.failWith = 'ENOSPC';
    assert.equal((await httpGet(url('fake-b', '0.2.0'))).status, 200);
    upstream.setFault({ kind: 'corrupt' }, 'crate');
    const response = await httpGet(url('fake-a', '0.1.0'));
    const expected = upstream.crate('fake-a', '0.1.0').bytes.length;
    assert.ok(!response.complete || response.status !== 200, 'the response was cut short');
    assert.ok(response.body.length < expected, `${response.body.length} of ${expected} bytes`);
  });

  test('stores again once space is back, and says so', async (t) => {
    const { store, clock, logs, url } = await setup(t);
    store.failWith = 'ENOSPC';
    assert.equal(
      (await httpGet(url('fake-a', '0.1.0'))).headers['x-cargo-cacher-not-stored'],
      'storage full',
    );
    store.failWith = undefined;
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

const unwritableLines = (logs: LogLine[]) =>
  logs.filter((line) => /storage not writable/.test(line.msg));

describe('storage not writable', () => {
  test('passes verified crates through with the reason, logged once with errno and key', async (t) => {
    const { upstream, store, inner, logs, url, deps } = await setup(t);
    store.failWith = 'EACCES';
    for (const [name, version] of [
      ['fake-a', '0.1.0'],
      ['fake-b', '0.2.0'],
      ['fake-a', '0.1.0'],
    ] as const) {
      const response = await httpGet(url(name, version));
      assert.equal(response.status, 200, response.body.toString());
      assert.equal(response.headers['x-cargo-cacher-not-stored'], 'storage not writable');
      assert.equal(sha256Hex(response.body), upstream.crate(name, version).checksum);
    }
    assert.equal(await inner.stat('crates/fa/ke/fake-a/fake-a-0.1.0.crate'), undefined);
    assert.equal(unwritableLines(logs).length, 1, 'one line, not one per request');
    const [line] = unwritableLines(logs);
    // The first write refused is the index file of fake-a, stored before its crate is fetched.
    assert.match(
      line?.msg ?? '',
      /^storage not writable \(EACCES storing index\/fa\/ke\/fake-a at /,
    );
    assert.equal(fullLines(logs).length, 0, 'a full disk keeps its own wording');
    const health = deps.storageHealth?.();
    assert.equal(health?.writable, false);
    assert.match(
      health?.problem ?? '',
      /^storage not writable: EACCES storing index\/fa\/ke\/fake-[ab] at /,
    );
  });

  test('index files that cannot be stored are still served, and the guard hears of it', async (t) => {
    const { upstream, store, inner, port, logs, deps } = await setup(t);
    store.failWith = 'EROFS';
    for (let i = 0; i < 2; i++) {
      const response = await httpGet(`http://127.0.0.1:${port}/index/fa/ke/fake-a`);
      assert.equal(response.status, 200);
      assert.ok(response.body.toString().includes(upstream.crate('fake-a', '0.1.0').indexLine));
    }
    assert.equal(await inner.stat('index/fa/ke/fake-a'), undefined);
    assert.equal(unwritableLines(logs).length, 1);
    assert.match(
      unwritableLines(logs)[0]?.msg ?? '',
      /^storage not writable \(EROFS storing index\/fa\/ke\/fake-a /,
    );
    assert.equal(deps.storageHealth?.().writable, false);
  });

  test('a crate whose store fails names the crate key, and a store after the minute ends it', async (t) => {
    const { upstream, store, inner, clock, logs, url, deps, port } = await setup(t);
    // The index files are stored first, so the crate's own write is the one refused.
    for (const path of ['config.json', 'fa/ke/fake-a']) {
      assert.equal((await httpGet(`http://127.0.0.1:${port}/index/${path}`)).status, 200);
    }
    store.failWith = 'EPERM';
    const passed = await httpGet(url('fake-a', '0.1.0'));
    assert.equal(passed.status, 200);
    assert.equal(passed.headers['x-cargo-cacher-not-stored'], 'storage not writable');
    assert.equal(sha256Hex(passed.body), upstream.crate('fake-a', '0.1.0').checksum);
    assert.match(
      unwritableLines(logs)[0]?.msg ?? '',
      /^storage not writable \(EPERM storing crates\/fa\/ke\/fake-a\/fake-a-0\.1\.0\.crate at /,
    );
    store.failWith = undefined;
    // Within the minute nothing is stored: a refusing store is not hammered with doomed writes.
    const downloads = upstream.count('/dl/');
    assert.ok((await httpGet(url('fake-a', '0.1.0'))).headers['x-cargo-cacher-not-stored']);
    assert.equal(upstream.count('/dl/'), downloads + 1, 'passed through: one download');
    assert.equal(deps.storageHealth?.().writable, false);
    clock.ms += 61_000;
    const stored = await httpGet(url('fake-a', '0.1.0'));
    assert.equal(stored.headers['x-cache-status'], 'MISS');
    assert.equal(stored.headers['x-cargo-cacher-not-stored'], undefined);
    assert.ok(await inner.stat('crates/fa/ke/fake-a/fake-a-0.1.0.crate'));
    assert.equal((await httpGet(url('fake-a', '0.1.0'))).headers['x-cache-status'], 'HIT');
    assert.deepEqual(deps.storageHealth?.(), { writable: true });
    assert.ok(logs.some((line) => /storage takes writes again/.test(line.msg)));
  });

  test('a bucket that refuses puts: crates pass through, named by the SDK error', async (t) => {
    const s3 = await startS3();
    t.after(() => s3.close());
    const client = createS3Client(s3.settings());
    t.after(() => client.destroy());
    // The store's init() writes a probe object: the bucket refuses writes once it is up.
    let refuse = false;
    const { upstream, inner, logs, url, port } = await setup(
      t,
      async () =>
        new S3BlobStore({ settings: s3.settings(), client: refusingWrites(client, () => refuse) }),
    );
    // Index files stored first, so the refused write is the crate's upload.
    for (const path of ['config.json', 'fa/ke/fake-a']) {
      assert.equal((await httpGet(`http://127.0.0.1:${port}/index/${path}`)).status, 200);
    }
    refuse = true;
    const response = await httpGet(url('fake-a', '0.1.0'));
    assert.equal(response.status, 200, response.body.toString());
    assert.equal(response.headers['x-cargo-cacher-not-stored'], 'storage not writable');
    assert.equal(sha256Hex(response.body), upstream.crate('fake-a', '0.1.0').checksum);
    assert.equal(await inner.stat('crates/fa/ke/fake-a/fake-a-0.1.0.crate'), undefined);
    assert.match(
      unwritableLines(logs)[0]?.msg ?? '',
      /^storage not writable \(AccessDenied storing crates\/fa\/ke\/fake-a\/fake-a-0\.1\.0\.crate\)/,
    );
  });

  test('/health says the storage is not writable', async (t) => {
    const { store, url, port } = await setup(t);
    store.failWith = 'EACCES';
    assert.equal((await httpGet(url('fake-a', '0.1.0'))).status, 200);
    const health = await httpGet(`http://127.0.0.1:${port}/health`);
    assert.ok(health.body.toString().includes('storage not writable'), health.body.toString());
  });
});
