import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Config, ConfigSettings } from '../../src/config.ts';
import { parseIndexFile } from '../../src/registry/index-entry.ts';
import type { FakeCrateSpec, FakeUpstream, FakeUpstreamOptions } from '../helpers/fake-upstream.ts';
import { httpGet, httpGetRawPath, type RawResponse } from '../helpers/http-get.ts';
import { startProxy, startUpstreamAndProxy, type UpstreamAndProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

/** Enough versions that the index file is worth gzipping (the proxy skips tiny bodies). */
const MANY: FakeCrateSpec[] = ['1.0.0', '1.0.1', '1.1.0', '1.2.0', '1.2.1', '2.0.0'].map(
  (version) => ({ name: 'many-versions', version }),
);
const CRATES: FakeCrateSpec[] = [
  { name: 'fake-a', version: '0.1.0' },
  { name: 'fake-b', version: '0.2.0', deps: [{ name: 'fake-a', req: '0.1' }] },
  ...MANY,
];

const FAKE_A = '/index/fa/ke/fake-a';
const MANY_PATH = '/index/ma/ny/many-versions';

/** The headers cargo adds to every request over plain `http://` (cargo-protocol.md §0.1). */
const H2C_HEADERS = {
  Connection: 'Upgrade, HTTP2-Settings',
  Upgrade: 'h2c',
  'HTTP2-Settings': 'AAMAAABkAAQAAQAAAAIAAAAA',
};

type Setup = UpstreamAndProxy;

/** A fake upstream with {@link CRATES} and a proxy in front of it, closed when the test ends. */
function setup(
  t: TestContext,
  options: {
    upstream?: FakeUpstreamOptions;
    settings?: ConfigSettings;
    storageDir?: string;
    now?: () => number;
  } = {},
): Promise<Setup> {
  return startUpstreamAndProxy(t, {
    ...options,
    upstream: { crates: CRATES, ...options.upstream },
  });
}

/** The index file as upstream serves it. */
async function fromUpstream(upstream: FakeUpstream, path: string): Promise<RawResponse> {
  return httpGet(`${upstream.url}${path}`);
}

/** Requests to upstream for one path. */
function upstreamHits(upstream: FakeUpstream, path: string): number {
  return upstream.count((request) => request.path === path);
}

function assertJsonError(response: RawResponse): void {
  assert.match(String(response.headers['content-type']), /^application\/json/);
  const body = JSON.parse(response.body.toString()) as { errors: { detail: string }[] };
  assert.equal(typeof body.errors[0]?.detail, 'string');
  assert.ok((body.errors[0]?.detail ?? '').length > 0);
}

describe('sparse index: config.json', () => {
  test('points dl and api at the proxy and keeps every other key of upstream', async (t) => {
    const upstreamConfig = {
      dl: 'https://static.example.invalid/crates',
      api: 'https://api.example.invalid',
      'auth-required': false,
      'x-extra': { nested: [1, 2] },
    };
    const { proxy } = await setup(t, {
      upstream: { configOverride: JSON.stringify(upstreamConfig) },
    });
    const response = await httpGet(`${proxy.url}/index/config.json`);
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.body.toString()), {
      ...upstreamConfig,
      dl: `${proxy.url}/api/v1/crates`,
      api: proxy.url,
    });
  });

  test('serves no api when upstream has none', async (t) => {
    const { proxy } = await setup(t, {
      upstream: { configOverride: JSON.stringify({ dl: 'https://static.example.invalid/c' }) },
    });
    const response = await httpGet(`${proxy.url}/index/config.json`);
    assert.deepEqual(JSON.parse(response.body.toString()), { dl: `${proxy.url}/api/v1/crates` });
  });
});

describe('sparse index: index files', () => {
  test('serves index files byte for byte with a strong ETag and Last-Modified', async (t) => {
    const { upstream, proxy } = await setup(t);
    for (const path of [FAKE_A, '/index/fa/ke/fake-b', MANY_PATH]) {
      const response = await httpGet(`${proxy.url}${path}`);
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, (await fromUpstream(upstream, path)).body);
      assert.match(String(response.headers.etag), /^"[^"]+"$/, 'a strong, quoted ETag');
      assert.ok(Number.isFinite(Date.parse(String(response.headers['last-modified']))));
    }
  });

  test('answers a matching If-None-Match with a bodiless 304, and a mismatch with 200', async (t) => {
    const { proxy } = await setup(t);
    const first = await httpGet(`${proxy.url}${FAKE_A}`);
    const etag = String(first.headers.etag);
    const matching = await httpGet(`${proxy.url}${FAKE_A}`, { 'if-none-match': etag });
    assert.equal(matching.status, 304);
    assert.equal(matching.body.length, 0);
    assert.equal(matching.headers.etag, etag);
    const listed = await httpGet(`${proxy.url}${FAKE_A}`, { 'if-none-match': `"x", ${etag}` });
    assert.equal(listed.status, 304);
    const mismatch = await httpGet(`${proxy.url}${FAKE_A}`, { 'if-none-match': '"other"' });
    assert.equal(mismatch.status, 200);
    assert.deepEqual(mismatch.body, first.body);
  });

  test('never answers 304 to a request without conditional headers', async (t) => {
    const { proxy } = await setup(t, { settings: { indexTtlMs: 0 } });
    for (let i = 0; i < 3; i++) {
      const response = await httpGet(`${proxy.url}${FAKE_A}`);
      assert.equal(response.status, 200);
      assert.ok(response.body.length > 0);
    }
  });

  test('answers If-Modified-Since by the Last-Modified date', async (t) => {
    const { proxy } = await setup(t);
    const first = await httpGet(`${proxy.url}${FAKE_A}`);
    const lastModified = String(first.headers['last-modified']);
    const same = await httpGet(`${proxy.url}${FAKE_A}`, { 'if-modified-since': lastModified });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    const earlier = new Date(Date.parse(lastModified) - 3_600_000).toUTCString();
    const older = await httpGet(`${proxy.url}${FAKE_A}`, { 'if-modified-since': earlier });
    assert.equal(older.status, 200);
    assert.deepEqual(older.body, first.body);
    const garbage = await httpGet(`${proxy.url}${FAKE_A}`, { 'if-modified-since': 'yesterday' });
    assert.equal(garbage.status, 200);
    // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
    const both = await httpGet(`${proxy.url}${FAKE_A}`, {
      'if-none-match': '"other"',
      'if-modified-since': lastModified,
    });
    assert.equal(both.status, 200);
  });

  test('gzips for clients that accept it, and sends identity otherwise', async (t) => {
    const { upstream, proxy } = await setup(t);
    const original = (await fromUpstream(upstream, MANY_PATH)).body;
    assert.ok(original.length > 1024, 'the fixture is big enough to be compressed');
    const gzipped = await httpGet(`${proxy.url}${MANY_PATH}`, { 'accept-encoding': 'gzip' });
    assert.equal(gzipped.status, 200);
    assert.equal(gzipped.headers['content-encoding'], 'gzip');
    assert.match(String(gzipped.headers.vary), /accept-encoding/i);
    assert.ok(gzipped.body.length < original.length);
    assert.deepEqual(gunzipSync(gzipped.body), original);
    // cargo's own header (curl's "everything I support").
    const cargoLike = await httpGet(`${proxy.url}${MANY_PATH}`, {
      'accept-encoding': 'deflate, gzip',
    });
    assert.deepEqual(gunzipSync(cargoLike.body), original);
    const declined: Record<string, string>[] = [
      {},
      { 'accept-encoding': 'identity' },
      { 'accept-encoding': 'gzip;q=0' },
    ];
    for (const headers of declined) {
      const plain = await httpGet(`${proxy.url}${MANY_PATH}`, headers);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.deepEqual(plain.body, original);
    }
    const revalidated = await httpGet(`${proxy.url}${MANY_PATH}`, {
      'accept-encoding': 'gzip',
      'if-none-match': String(gzipped.headers.etag),
    });
    assert.equal(revalidated.status, 304);
  });

  test('answers a second request within the TTL without contacting upstream', async (t) => {
    const { upstream, proxy } = await setup(t);
    const first = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(first.headers['x-cache-status'], 'MISS');
    upstream.resetLog();
    const second = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-cache-status'], 'HIT');
    assert.deepEqual(second.body, first.body);
    assert.equal(upstream.requests.length, 0);
  });

  test("revalidates after the TTL with upstream's validators, and a 304 moves no body", async (t) => {
    const { upstream, proxy } = await setup(t, { settings: { indexTtlMs: 0 } });
    const upstreamEtag = String((await fromUpstream(upstream, FAKE_A)).headers.etag);
    const first = await httpGet(`${proxy.url}${FAKE_A}`);
    upstream.resetLog();
    const second = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-cache-status'], 'REVALIDATED');
    assert.deepEqual(second.body, first.body);
    assert.equal(second.headers.etag, first.headers.etag, 'an unchanged body keeps its ETag');
    assert.equal(upstream.requests.length, 1);
    assert.equal(upstream.requests[0]?.path, FAKE_A);
    assert.equal(upstream.requests[0]?.headers['if-none-match'], upstreamEtag);
  });

  test('shows a newly published version once the TTL has passed', async (t) => {
    // A TTL no test could sleep through: only the instance's clock moves past it.
    const clock = { ms: Date.now() };
    const ttlMs = 3_600_000;
    const { upstream, proxy } = await setup(t, {
      settings: { indexTtlMs: ttlMs },
      now: () => clock.ms,
    });
    const before = await httpGet(`${proxy.url}${FAKE_A}`);
    const published = await upstream.addCrate({ name: 'fake-a', version: '0.1.1' });
    clock.ms += ttlMs - 1;
    const cached = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(cached.headers['x-cache-status'], 'HIT', 'fresh until the TTL has passed');
    assert.deepEqual(cached.body, before.body);
    clock.ms += 1;
    const after = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(after.headers['x-cache-status'], 'REVALIDATED');
    assert.ok(after.body.toString().includes(published.indexLine));
    assert.deepEqual(after.body, (await fromUpstream(upstream, FAKE_A)).body);
    assert.notEqual(after.headers.etag, before.headers.etag);
  });

  test('answers 404 for an unknown crate and its -/_ probe, and caches the answer', async (t) => {
    const { upstream, proxy } = await setup(t);
    for (const path of ['/index/no/ne/nonexistent-xyz', '/index/no/ne/nonexistent_xyz']) {
      const response = await httpGet(`${proxy.url}${path}`);
      assert.equal(response.status, 404, path);
      assertJsonError(response);
      const again = await httpGet(`${proxy.url}${path}`);
      assert.equal(again.status, 404);
      assert.equal(upstreamHits(upstream, path), 1, `${path} was asked upstream once`);
    }
  });

  test('rejects malformed index paths with 4xx without asking upstream', async (t) => {
    const { upstream, proxy } = await setup(t);
    const paths = [
      '/index/xx/yy/fake-a',
      '/index/fa/ke/Fake-A',
      '/index/FA/KE/fake-a',
      '/index/3/f/fake-a',
      '/index/fake-a',
      '/index/fa/ke/fake-a/',
      '/index//fa/ke/fake-a',
      '/index/fa/ke/../ke/fake-a',
      '/index/../../etc/passwd',
      '/index/%2e%2e/x',
      '/index/%2e%2e/%2e%2e/etc/passwd',
      '/index/fa/ke/%2e%2e%2f%2e%2e%2fpasswd',
      '/index/fa%2Fke%2Ffake-a',
      '/index/fa%2fke%2ffake-a',
      '/index/fa/ke%2Ffake-a',
      '/index/fa/ke/fake-a%00',
      '/index/fa/ke/fake%2Da',
      '/index/fa/ke/fake-a%',
      '/index/%C0%AE%C0%AE/x',
      '/index/',
      `/index/aa/aa/${'a'.repeat(300)}`,
    ];
    for (const path of paths) {
      const response = await httpGetRawPath(proxy.url, path);
      assert.ok(response.status >= 400 && response.status < 500, `${path}: ${response.status}`);
    }
    assert.equal(upstream.count('/index/'), 0, 'no malformed path reached upstream');
  });
});

/** Downloads every version an index file lists, so the cache holds them all. */
async function holdEveryVersion(url: string, indexBody: Buffer): Promise<void> {
  for (const { name, version } of parseIndexFile(indexBody)) {
    const download = await httpGet(`${url}/api/v1/crates/${name}/${version}/download`);
    assert.equal(download.status, 200);
  }
}

describe('sparse index: upstream failures', () => {
  /**
   * Caches fake-a and every version of it (a stale index file lists only what is held), then
   * lets the TTL pass so the next request has to revalidate.
   */
  async function cachedThenExpired(t: TestContext, settings: Partial<Config> = {}) {
    const ready = await setup(t, { settings: { indexTtlMs: 0, ...settings } });
    const first = await httpGet(`${ready.proxy.url}${FAKE_A}`);
    assert.equal(first.status, 200);
    await holdEveryVersion(ready.proxy.url, first.body);
    return { ...ready, body: first.body };
  }

  function assertStale(response: RawResponse, body: Buffer): void {
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-cache-status'], 'STALE');
    assert.deepEqual(response.body, body);
  }

  test('serves the stale copy with a marker when upstream is down', async (t) => {
    const { upstream, proxy, body } = await cachedThenExpired(t);
    await upstream.stop();
    assertStale(await httpGet(`${proxy.url}${FAKE_A}`), body);
  });

  test('serves the stale copy when upstream answers 500', async (t) => {
    const { upstream, proxy, body } = await cachedThenExpired(t);
    upstream.setFault({ kind: 'status', status: 500 }, 'index');
    assertStale(await httpGet(`${proxy.url}${FAKE_A}`), body);
    assert.ok(upstream.count(FAKE_A) >= 2, 'upstream was asked');
  });

  test('serves the stale copy when upstream is slower than the timeout', async (t) => {
    const timeouts = { connectMs: 1000, headersMs: 200, bodyMs: 200 };
    const { upstream, proxy, body } = await cachedThenExpired(t, { timeouts });
    upstream.setFault({ kind: 'slow', delayMs: 5000 }, 'index');
    const started = Date.now();
    assertStale(await httpGet(`${proxy.url}${FAKE_A}`), body);
    assert.ok(Date.now() - started < 3000, 'did not wait for the slow upstream');
  });

  test('answers 503 with a JSON error when upstream is down and nothing is cached', async (t) => {
    const { upstream, proxy } = await setup(t);
    await upstream.stop();
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.ok(response.status === 502 || response.status === 503, String(response.status));
    assertJsonError(response);
  });

  test('answers 502/503 with a JSON error when upstream fails and nothing is cached', async (t) => {
    const { upstream, proxy } = await setup(t, {
      settings: { timeouts: { connectMs: 1000, headersMs: 200, bodyMs: 200 } },
    });
    upstream.setFault({ kind: 'status', status: 500 }, 'index');
    const failed = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.ok(failed.status === 502 || failed.status === 503, String(failed.status));
    assertJsonError(failed);
    upstream.setFault({ kind: 'slow', delayMs: 5000 }, 'index');
    const slow = await httpGet(`${proxy.url}/index/fa/ke/fake-b`);
    assert.equal(slow.status, 504);
    assertJsonError(slow);
  });
});

describe('sparse index: offline and HTTP details', () => {
  test('offline serves cached files without contacting upstream and 404s the rest', async (t) => {
    const storageDir = await makeTempDir('sparse-offline');
    t.after(() => removeTempDir(storageDir));
    const { upstream, proxy } = await setup(t, { storageDir });
    const cached = await httpGet(`${proxy.url}${FAKE_A}`);
    await holdEveryVersion(proxy.url, cached.body);
    const config = await httpGet(`${proxy.url}/index/config.json`);
    await proxy.close();
    upstream.resetLog();
    const offline = await startProxy({ upstream, storageDir, settings: { offline: true } });
    t.after(() => offline.close());
    const served = await httpGet(`${offline.url}${FAKE_A}`);
    assert.equal(served.status, 200);
    assert.deepEqual(served.body, cached.body);
    const servedConfig = await httpGet(`${offline.url}/index/config.json`);
    assert.equal(servedConfig.status, 200);
    assert.deepEqual(
      JSON.parse(servedConfig.body.toString()),
      JSON.parse(config.body.toString().replaceAll(proxy.url, offline.url)),
    );
    const missing = await httpGet(`${offline.url}/index/fa/ke/fake-b`);
    assert.equal(missing.status, 404);
    assert.equal(upstream.requests.length, 0);
  });

  test('offline with nothing cached serves a config.json that points downloads here', async (t) => {
    const { upstream } = await setup(t);
    const offline = await startProxy({ upstream, settings: { offline: true } });
    t.after(() => offline.close());
    const config = await httpGet(`${offline.url}/index/config.json`);
    assert.equal(config.status, 200);
    assert.deepEqual(JSON.parse(config.body.toString()), { dl: `${offline.url}/api/v1/crates` });
    assert.equal((await httpGet(`${offline.url}${FAKE_A}`)).status, 404);
    assert.equal(upstream.requests.length, 0);
  });

  test('answers requests carrying Upgrade: h2c like any other', async (t) => {
    const { upstream, proxy } = await setup(t);
    for (const path of ['/index/config.json', FAKE_A, FAKE_A]) {
      const response = await httpGet(`${proxy.url}${path}`, H2C_HEADERS);
      assert.equal(response.status, 200, path);
      assert.equal(response.complete, true);
      assert.ok(response.body.length > 0);
    }
    const fresh = await httpGet(`${proxy.url}${FAKE_A}`, H2C_HEADERS);
    assert.deepEqual(fresh.body, (await fromUpstream(upstream, FAKE_A)).body);
  });
});
