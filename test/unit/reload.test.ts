import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buildConfig, type Config, type ConfigSettings } from '../../src/config.ts';
import type { Instance } from '../../src/instance.ts';
import { createLogger } from '../../src/logger.ts';
import { Reloader } from '../../src/reload.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

let dir: string;
before(async () => {
  dir = await makeTempDir('reload-unit');
});
after(() => removeTempDir(dir));

const BASE: ConfigSettings = {
  port: 8080,
  storageDir: '/srv/crates',
  sparseUpstream: 'https://one.example/',
  indexTtlMs: 60_000,
};

/** An instance whose live pieces record what a reload does to them. */
function fakeInstance() {
  const calls: string[] = [];
  const instance = {
    deps: {
      index: { setTtl: (ms: number) => calls.push(`ttl ${ms}`) },
      sparse: { setBaseUrls: (urls: string[]) => calls.push(`sparse ${urls.join(',')}`) },
      registryConfig: {
        setCrateUpstreams: (urls: string[]) => calls.push(`crates ${urls.join(',')}`),
      },
    },
    http: {
      setTimeouts: (timeouts: Config['timeouts']) => calls.push(`timeouts ${timeouts.headersMs}`),
    },
    tokens: undefined,
    pinned: new Set<string>(['old@1.0.0']),
    catalogue: { setPins: (pins: Set<string>) => calls.push(`pins ${[...pins].join(',')}`) },
    app: { server: {} },
  };
  return { calls, instance: instance as unknown as Instance };
}

/** Paths without settings derived elsewhere from the ones changed here (rustup's TTL). */
function ownPaths(paths: string[]): string[] {
  return paths.filter((path) => !path.startsWith('rustup.'));
}

function reloaderFor(next: () => Readonly<Config>) {
  const { calls, instance } = fakeInstance();
  const lines: { level: string; msg: string }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text));
      callback();
    },
  });
  const log = createLogger({ level: 'warn', format: 'json', destination });
  const reloader = new Reloader({
    instance,
    log,
    config: buildConfig(BASE),
    reread: async () => next(),
  });
  return { reloader, calls, lines, instance, log };
}

describe('Reloader', () => {
  test('applies what can change live, keeps the rest until a restart, and says which', async () => {
    const next = buildConfig({
      ...BASE,
      port: 9090,
      indexTtlMs: 300_000,
      sparseUpstream: 'https://two.example/,https://three.example/',
      logLevel: 'debug',
    });
    const { reloader, calls, lines, log } = reloaderFor(() => next);
    const report = await reloader.reload();
    assert.deepEqual(ownPaths(report.restartNeeded), ['port']);
    assert.deepEqual([...report.applied].sort(), [
      'indexTtlMs',
      'logLevel',
      'sparseUpstream',
      'sparseUpstreams',
    ]);
    assert.ok(calls.includes('ttl 300000'));
    assert.ok(calls.includes('sparse https://two.example/,https://three.example/'));
    assert.equal(log.level, 'debug');
    assert.equal(reloader.config.port, 8080, 'the port in force is the one it listens on');
    assert.equal(reloader.config.indexTtlMs, 300_000);
    assert.ok(
      lines.some((line) => line.msg === 'reload: port changed; it takes effect after a restart'),
    );

    // Still reported by the next reload: the port in force has not changed.
    const again = await reloader.reload();
    assert.deepEqual(ownPaths(again.restartNeeded), ['port']);
    assert.deepEqual(again.applied, []);
  });

  test('switching the sparse upstream off, or TLS on, needs a restart', async () => {
    const { reloader, calls } = reloaderFor(() =>
      buildConfig({
        ...BASE,
        sparseUpstream: undefined,
        tls: { certFile: '/c.pem', keyFile: '/k.pem' },
      }),
    );
    const report = await reloader.reload();
    assert.ok(report.ok);
    assert.deepEqual(report.applied, []);
    assert.deepEqual([...report.restartNeeded].sort(), [
      'sparseUpstream',
      'sparseUpstreams',
      'tls.certFile',
      'tls.keyFile',
    ]);
    assert.ok(!calls.some((call) => call.startsWith('sparse')));
  });

  test('pins are read again; a pin file that cannot be read changes nothing at all', async () => {
    const pins = join(dir, 'pins');
    await writeFile(pins, 'pinned-a=1.2.3\n');
    let settings: ConfigSettings = { ...BASE, indexTtlMs: 120_000, upkeep: { pins: [pins] } };
    const { reloader, calls, lines, instance } = reloaderFor(() => buildConfig(settings));
    const good = await reloader.reload();
    assert.ok(good.ok);
    assert.deepEqual([...instance.pinned], ['pinned-a@1.2.3']);
    assert.ok(calls.includes('pins pinned-a@1.2.3'));

    calls.length = 0;
    settings = { ...BASE, indexTtlMs: 180_000, upkeep: { pins: [join(dir, 'missing')] } };
    const bad = await reloader.reload();
    assert.equal(bad.ok, false);
    assert.deepEqual(calls, [], 'nothing was touched');
    assert.deepEqual([...instance.pinned], ['pinned-a@1.2.3']);
    assert.equal(reloader.config.indexTtlMs, 120_000);
    assert.match(
      lines.at(-1)?.msg ?? '',
      /^reload failed: .*missing.*; the previous settings stay in force$/,
    );
  });

  test('reloads run one at a time', async () => {
    let running = 0;
    let most = 0;
    const { instance } = fakeInstance();
    const log = createLogger({ level: 'silent', format: 'json' });
    const reloader = new Reloader({
      instance,
      log,
      config: buildConfig(BASE),
      reread: async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        running -= 1;
        return buildConfig(BASE);
      },
    });
    await Promise.all([reloader.reload(), reloader.reload(), reloader.reload()]);
    assert.equal(most, 1);
  });
});
