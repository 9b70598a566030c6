import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { type ConfigSettings, DEFAULTS } from '../../src/config.ts';
import { sha256Hex } from '../helpers/crate-pack.ts';
import type { FakeCrateSpec, FakeUpstream, FakeUpstreamOptions } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet, httpGetRawPath, type RawResponse } from '../helpers/http-get.ts';
import {
  type RunningProxy,
  startProxy,
  startUpstreamAndProxy,
  type UpstreamAndProxy,
} from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const CRATES: FakeCrateSpec[] = [
  { name: 'fake-a', version: '0.1.0' },
  { name: 'fake-b', version: '0.2.0', deps: [{ name: 'fake-a', req: '0.1' }] },
  { name: 'plus', version: '1.0.0+build.5' },
  { name: 'MixedCase', version: '0.3.0' },
  { name: 'gone', version: '1.0.0', yanked: true },
  // Big enough that a download takes a moment, so concurrent requests overlap.
  { name: 'big-crate', version: '1.0.0', padBytes: 2 * 1024 * 1024 },
];

type Setup = UpstreamAndProxy;

/** A fake upstream with {@link CRATES} and a proxy in front of it, closed when the test ends. */
function setup(
  t: TestContext,
  options: { upstream?: FakeUpstreamOptions; settings?: ConfigSettings; storageDir?: string } = {},
): Promise<Setup> {
  return startUpstreamAndProxy(t, {
    ...options,
    upstream: { crates: CRATES, ...options.upstream },
  });
}

function downloadUrl(proxy: RunningProxy, name: string, version: string): string {
  return `${proxy.url}/api/v1/crates/${name}/${version}/download`;
}

/** Upstream crate downloads so far (the fake's `dl`, redirect and file routes). */
function upstreamDownloads(upstream: FakeUpstream): number {
  return upstream.count((r) => !r.path.startsWith('/index/'));
}

/** Every file below `dir`, relative to it; empty when `dir` does not exist. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/** The checksum of a version in upstream's index file, read from the wire. */
async function indexChecksum(upstream: FakeUpstream, name: string, version: string) {
  const published = upstream.crate(name, version);
  const file = await httpGet(`${upstream.indexUrl}${published.indexPath}`);
  const line = file.body
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((text) => JSON.parse(text) as { vers: string; cksum: string })
    .find((entry) => entry.vers === version);
  assert.ok(line, `${name} ${version} is in upstream's index`);
  return line.cksum;
}

function errorDetail(response: RawResponse): string {
  const body = JSON.parse(response.body.toString()) as { errors: { detail: string }[] };
  return body.errors[0]?.detail ?? '';
}

describe('crate downloads: cache behaviour', () => {
  test('downloads on a miss and serves the stored copy on a hit', async (t) => {
    const { upstream, proxy } = await setup(t);
    const cksum = await indexChecksum(upstream, 'fake-b', '0.2.0');
    const miss = await httpGet(downloadUrl(proxy, 'fake-b', '0.2.0'));
    assert.equal(miss.status, 200);
    assert.equal(miss.headers['x-cache-status'], 'MISS');
    assert.equal(sha256Hex(miss.body), cksum);
    assert.equal(upstreamDownloads(upstream), 1);
    const hit = await httpGet(downloadUrl(proxy, 'fake-b', '0.2.0'));
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['x-cache-status'], 'HIT');
    assert.deepEqual(hit.body, miss.body);
    assert.equal(upstreamDownloads(upstream), 1, 'the hit made no upstream download');
    for (const response of [miss, hit]) {
      assert.equal(response.headers['content-type'], 'application/gzip');
      assert.equal(response.headers['content-length'], String(miss.body.length));
      assert.match(String(response.headers['cache-control']), /immutable/);
      assert.match(String(response.headers['cache-control']), /max-age=\d{7,}/);
      assert.ok(String(response.headers.etag).includes(cksum), 'ETag derives from the checksum');
    }
    const notModified = await httpGet(downloadUrl(proxy, 'fake-b', '0.2.0'), {
      'if-none-match': String(hit.headers.etag),
    });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
  });

  test('keeps crates across a restart and serves them with upstream down', async (t) => {
    const storageDir = await makeTempDir('crate-restart');
    t.after(() => removeTempDir(storageDir));
    const { upstream, proxy } = await setup(t, { storageDir });
    const first = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.equal(first.status, 200);
    await proxy.close();
    await upstream.stop();
    const restarted = await startProxy({ upstream, storageDir });
    t.after(() => restarted.close());
    const again = await httpGet(downloadUrl(restarted, 'fake-a', '0.1.0'));
    assert.equal(again.status, 200);
    assert.equal(again.headers['x-cache-status'], 'HIT');
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.etag, first.headers.etag);
  });

  test('fetches a crate once for 20 concurrent requests', async (t) => {
    const { upstream, proxy } = await setup(t);
    const expected = upstream.crate('big-crate', '1.0.0').bytes;
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => httpGet(downloadUrl(proxy, 'big-crate', '1.0.0'))),
    );
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.equal(response.complete, true);
      assert.ok(response.body.equals(expected), 'every client got the exact bytes');
    }
    assert.equal(upstream.count('/dl/'), 1);
  });

  test('fetches a small crate once for 20 concurrent requests', async (t) => {
    const { upstream, proxy } = await setup(t);
    const expected = upstream.crate('fake-a', '0.1.0').bytes;
    // Warm the index so the requests race on the download alone.
    await httpGet(`${proxy.url}/index/fa/ke/fake-a`);
    await httpGet(`${proxy.url}/index/config.json`);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'))),
    );
    for (const response of responses) assert.ok(response.body.equals(expected));
    assert.equal(upstream.count('/dl/'), 1);
  });

  test('fetches once when a storage miss is reported after another request stored it', async (t) => {
    const { upstream, proxy } = await setup(t);
    // Slow storage (an object store, a busy disk): both requests miss, and the second miss is
    // held until the first request has been answered, its flight over and the crate stored.
    // A miss is found by `stat` (the catalogue does not know the crate yet).
    const store = proxy.deps.store;
    const stat = store.stat.bind(store);
    let misses = 0;
    let secondMissed = () => {};
    const bothMissed = new Promise<void>((resolve) => {
      secondMissed = resolve;
    });
    let releaseMiss = () => {};
    const missHeld = new Promise<void>((resolve) => {
      releaseMiss = resolve;
    });
    store.stat = async (key) => {
      const found = await stat(key);
      if (found || !key.startsWith('crates/')) return found;
      misses += 1;
      if (misses === 1) {
        await bothMissed;
      } else if (misses === 2) {
        secondMissed();
        await missHeld;
      }
      return found;
    };
    const requests = [
      httpGet(downloadUrl(proxy, 'fake-a', '0.1.0')),
      httpGet(downloadUrl(proxy, 'fake-a', '0.1.0')),
    ];
    // The held request cannot finish first.
    await Promise.race(requests);
    releaseMiss();
    const responses = await Promise.all(requests);
    for (const response of responses) {
      assert.deepEqual(response.body, upstream.crate('fake-a', '0.1.0').bytes);
    }
    // Two misses of the requests, and the first flight's own look before downloading.
    assert.ok(misses >= 2, 'both requests missed the store');
    assert.equal(upstream.count('/dl/'), 1);
  });

  test('answers HEAD with the headers of the download', async (t) => {
    const { upstream, proxy } = await setup(t);
    const bytes = upstream.crate('fake-a', '0.1.0').bytes;
    for (const status of ['MISS', 'HIT']) {
      const head = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'), {}, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['content-length'], String(bytes.length));
      assert.equal(head.headers['x-cache-status'], status);
    }
    assert.deepEqual((await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'))).body, bytes);
  });

  test('reports health as JSON', async (t) => {
    const { proxy } = await setup(t);
    const health = await httpGet(`${proxy.url}/health`);
    assert.equal(health.status, 200);
    assert.match(String(health.headers['content-type']), /^application\/json/);
    const body = JSON.parse(health.body.toString()) as { status: string; storage: string };
    assert.equal(body.status, 'ok');
    assert.equal(body.storage, proxy.storageDir);
  });
});

describe('crate downloads: bad upstream bodies', () => {
  test('refuses a corrupt crate with 502 naming the checksum, and stores nothing', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'corrupt' }, 'crate');
    const corrupt = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.equal(corrupt.status, 502);
    assert.match(errorDetail(corrupt), /checksum/i);
    assert.deepEqual(await listFiles(join(proxy.storageDir, 'crates')), []);
    assert.deepEqual(await listFiles(join(proxy.storageDir, 'tmp')), []);
    upstream.setFault(undefined);
    const good = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.equal(good.status, 200);
    assert.equal(good.headers['x-cache-status'], 'MISS');
    assert.deepEqual(good.body, upstream.crate('fake-a', '0.1.0').bytes);
    assert.equal(upstream.count('/dl/'), 2);
  });

  test('never stores a truncated upstream body', async (t) => {
    // Six broken bodies in a row would open the circuit breaker, which is not under test here.
    const resilience = { ...DEFAULTS.resilience, breakerFailures: 100 };
    const { upstream, proxy } = await setup(t, { settings: { resilience } });
    upstream.setFault({ kind: 'truncated' }, 'crate');
    for (const [name, version] of [
      ['fake-a', '0.1.0'],
      ['big-crate', '1.0.0'],
    ] as const) {
      const truncated = await httpGet(downloadUrl(proxy, name, version));
      assert.ok(truncated.status >= 500, `${name}: ${truncated.status}`);
    }
    assert.deepEqual(await listFiles(join(proxy.storageDir, 'crates')), []);
    assert.deepEqual(await listFiles(join(proxy.storageDir, 'tmp')), []);
    upstream.setFault(undefined);
    const good = await httpGet(downloadUrl(proxy, 'big-crate', '1.0.0'));
    assert.ok(good.body.equals(upstream.crate('big-crate', '1.0.0').bytes));
  });

  test('answers 5xx when upstream is down and the crate is not cached', async (t) => {
    const { upstream, proxy } = await setup(t);
    await httpGet(`${proxy.url}/index/fa/ke/fake-a`);
    await httpGet(`${proxy.url}/index/config.json`);
    upstream.setFault({ kind: 'status', status: 500 }, 'crate');
    const failed = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.equal(failed.status, 502);
    await upstream.stop();
    const down = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.ok(down.status === 502 || down.status === 503, String(down.status));
    assert.ok(errorDetail(down).length > 0);
  });
});

describe('crate downloads: what may be asked for', () => {
  test('answers 404 for an unknown crate or version without downloading', async (t) => {
    const { upstream, proxy } = await setup(t);
    for (const [name, version] of [
      ['no-such-crate', '1.0.0'],
      ['fake-a', '9.9.9'],
      ['fake-a', '0.1.0-alpha'],
      ['plus', '1.0.0'],
    ] as const) {
      const response = await httpGet(downloadUrl(proxy, name, version));
      assert.equal(response.status, 404, `${name} ${version}`);
      assert.ok(errorDetail(response).length > 0);
    }
    assert.equal(upstreamDownloads(upstream), 0);
  });

  test('rejects invalid names and versions with 4xx and touches nothing outside storage', async (t) => {
    const parent = await makeTempDir('crate-traversal');
    t.after(() => removeTempDir(parent));
    const storageDir = join(parent, 'store');
    const { upstream, proxy } = await setup(t, { storageDir });
    const before = await listFiles(parent);
    const paths = [
      '/api/v1/crates/../../../etc/passwd/download',
      '/api/v1/crates/%2e%2e/1.0.0/download',
      '/api/v1/crates/%2e%2e/%2e%2e/download',
      '/api/v1/crates/fake-a/%2e%2e/download',
      '/api/v1/crates/fake-a/../../etc/passwd/download',
      '/api/v1/crates/fake-a/..%2F..%2F..%2Fetc%2Fpasswd/download',
      '/api/v1/crates/fake-a/0.1.0%2F..%2F..%2F..%2Fescape/download',
      '/api/v1/crates/..%2F..%2Fescape/0.1.0/download',
      '/api/v1/crates/fake-a%00/0.1.0/download',
      '/api/v1/crates/fake-a/0.1.0%00/download',
      `/api/v1/crates/${'a'.repeat(65)}/1.0.0/download`,
      '/api/v1/crates/fake-a/1.0/download',
      '/api/v1/crates/fake-a/01.0.0/download',
      '/api/v1/crates/fake-a/latest/download',
      '/api/v1/crates/-fake/1.0.0/download',
      '/api/v1/crates/fake%20a/1.0.0/download',
      '/api/v1/crates/fake-a/%/download',
    ];
    for (const path of paths) {
      const response = await httpGetRawPath(proxy.url, path);
      assert.ok(response.status === 400 || response.status === 404, `${path}: ${response.status}`);
    }
    assert.deepEqual(await listFiles(parent), before, 'nothing was created');
    assert.equal(upstream.requests.length, 0, 'no upstream was contacted');
  });

  test('follows redirects from the upstream download URL', async (t) => {
    const { upstream, proxy } = await setup(t, { upstream: { dlTemplate: '{url}/redirect' } });
    const response = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, upstream.crate('fake-a', '0.1.0').bytes);
    assert.equal(upstream.count('/redirect/'), 1);
    assert.equal(upstream.count('/files/'), 1);
  });

  test("downloads from -u instead of upstream config.json's dl", async (t) => {
    const upstream = await startFakeUpstream({
      crates: CRATES,
      // Port 9 (discard) refuses connections: using this dl would fail.
      configOverride: JSON.stringify({ dl: 'http://127.0.0.1:9/nowhere', api: 'http://x' }),
    });
    t.after(() => upstream.close());
    const proxy = await startProxy({
      upstream,
      settings: { crateUpstream: `${upstream.url}/crates/{crate}/{crate}-{version}.crate` },
    });
    t.after(() => proxy.close());
    for (const [name, version] of [
      ['fake-a', '0.1.0'],
      ['MixedCase', '0.3.0'],
    ] as const) {
      const response = await httpGet(downloadUrl(proxy, name, version));
      assert.equal(response.status, 200, `${name}: ${response.body}`);
      assert.deepEqual(response.body, upstream.crate(name, version).bytes);
    }
    assert.equal(upstream.count('/crates/fake-a/fake-a-0.1.0.crate'), 1);
    assert.equal(upstream.count('/crates/MixedCase/MixedCase-0.3.0.crate'), 1);
  });

  test('downloads a version with build metadata, sending + upstream as %2B', async (t) => {
    const { upstream, proxy } = await setup(t);
    const response = await httpGet(downloadUrl(proxy, 'plus', '1.0.0+build.5'));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, upstream.crate('plus', '1.0.0+build.5').bytes);
    assert.equal(upstream.count('/dl/plus/1.0.0%2Bbuild.5/download'), 1);
    const encoded = await httpGet(downloadUrl(proxy, 'plus', '1.0.0%2Bbuild.5'));
    assert.equal(encoded.status, 200);
    assert.equal(encoded.headers['x-cache-status'], 'HIT');
  });

  test('downloads a mixed-case crate by the name cargo uses', async (t) => {
    const { upstream, proxy } = await setup(t);
    const response = await httpGet(downloadUrl(proxy, 'MixedCase', '0.3.0'));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, upstream.crate('MixedCase', '0.3.0').bytes);
    assert.equal(upstream.count('/dl/MixedCase/0.3.0/download'), 1);
  });

  test('downloads a yanked version', async (t) => {
    const { upstream, proxy } = await setup(t);
    const yanked = await httpGet(downloadUrl(proxy, 'gone', '1.0.0'));
    assert.equal(yanked.status, 200);
    assert.deepEqual(yanked.body, upstream.crate('gone', '1.0.0').bytes);
    await upstream.yank('fake-a', '0.1.0');
    const later = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    assert.equal(later.status, 200);
  });

  test('downloads a version published after its index file was cached', async (t) => {
    const { upstream, proxy } = await setup(t, { settings: { indexTtlMs: 3_600_000 } });
    assert.equal((await httpGet(`${proxy.url}/index/fa/ke/fake-a`)).status, 200);
    await upstream.addCrate({ name: 'fake-a', version: '0.1.1' });
    const response = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.1'));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, upstream.crate('fake-a', '0.1.1').bytes);
    upstream.resetLog();
    const missing = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.2'));
    assert.equal(missing.status, 404);
    assert.equal(upstream.count('/index/fa/ke/fake-a'), 1, 'the index was revalidated once');
    assert.equal(upstreamDownloads(upstream), 0);
  });

  test('offline: serves cached crates and answers a miss with 404 that says offline', async (t) => {
    const storageDir = await makeTempDir('crate-offline');
    t.after(() => removeTempDir(storageDir));
    const { upstream, proxy } = await setup(t, { storageDir });
    const cached = await httpGet(downloadUrl(proxy, 'fake-a', '0.1.0'));
    await proxy.close();
    upstream.resetLog();
    const offline = await startProxy({ upstream, storageDir, settings: { offline: true } });
    t.after(() => offline.close());
    const hit = await httpGet(downloadUrl(offline, 'fake-a', '0.1.0'));
    assert.equal(hit.status, 200);
    assert.deepEqual(hit.body, cached.body);
    const miss = await httpGet(downloadUrl(offline, 'fake-b', '0.2.0'));
    assert.equal(miss.status, 404);
    assert.match(errorDetail(miss), /offline/);
    assert.equal(upstream.requests.length, 0);
  });
});
