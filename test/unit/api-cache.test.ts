import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { ApiCache } from '../../src/cache/api-cache.ts';
import { isCacherError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { parseMetadata, parseSearch } from '../../src/registry/api-request.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { apiUrl, CratesApiUpstream } from '../../src/upstream/crates-api.ts';
import type { HttpClient, UpstreamResponse } from '../../src/upstream/http-client.ts';
import { RateLimiter } from '../../src/upstream/rate-limit.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const SIX_MINUTES = 6 * 60_000;

/** An HTTP client answering every URL with a JSON body naming it, and logging the URLs. */
function fakeHttp(urls: string[]): HttpClient {
  return {
    async get(url): Promise<UpstreamResponse> {
      urls.push(url);
      return {
        status: 200,
        headers: { etag: '"v1"' },
        body: Readable.from([Buffer.from(JSON.stringify({ url }))]),
      };
    },
    async close() {},
  };
}

/** A cache whose limiter lets nothing wait: a request within the second is refused at once. */
async function setup(t: TestContext) {
  const dir = await makeTempDir('api-cache');
  t.after(() => removeTempDir(dir));
  const store = new FsBlobStore(dir);
  await store.init();
  const clock = new ManualClock();
  const urls: string[] = [];
  const limiter = new RateLimiter({ intervalMs: 1000, maxQueue: 0, ...clock });
  const upstream = new CratesApiUpstream({
    http: fakeHttp(urls),
    apiRoot: async () => 'https://crates.example',
    limiter,
  });
  const log = createLogger({ level: 'silent', format: 'json' });
  const cache = new ApiCache({ store, upstream, log, now: clock.now });
  return { cache, clock, urls, store };
}

describe('ApiCache', () => {
  test('a full rate-limit queue serves the stale copy, and 429 when there is none', async (t) => {
    const { cache, clock, urls } = await setup(t);
    const serde = parseMetadata('serde', 'crate');
    assert.equal((await cache.get(serde)).outcome, 'miss');
    await clock.advance(SIX_MINUTES);
    assert.equal((await cache.get(parseMetadata('tokio', 'crate'))).outcome, 'miss');

    const stale = await cache.get(serde);
    assert.equal(stale.outcome, 'stale', 'the API was just asked: no turn this second');
    await assert.rejects(cache.get(parseSearch({ q: 'new' })), (err) => {
      assert.ok(isCacherError(err, 'CARGO_CACHER_RATE_LIMITED'));
      assert.equal(err.retryAfter, 1);
      return true;
    });
    assert.deepEqual(urls, [
      'https://crates.example/api/v1/crates/serde',
      'https://crates.example/api/v1/crates/tokio',
    ]);
  });

  test('keeps metadata in storage and searches in memory only', async (t) => {
    const { cache, store, clock } = await setup(t);
    await cache.get(parseMetadata('Serde', 'versions'));
    await clock.advance(1000);
    await cache.get(parseSearch({ q: 'serde' }));
    assert.ok(await store.read('api/crates/serde/versions.json'));
    const keys: string[] = [];
    for await (const blob of store.list('api')) keys.push(blob.key);
    assert.deepEqual(keys, ['api/crates/serde/versions.json']);
  });
});

describe('apiUrl', () => {
  test('joins the API root and a checked request, also below a path', () => {
    const crate = parseMetadata('serde', 'crate');
    assert.equal(apiUrl('https://crates.io', crate), 'https://crates.io/api/v1/crates/serde');
    assert.equal(
      apiUrl('https://mirror.example/registry/', crate),
      'https://mirror.example/registry/api/v1/crates/serde',
    );
  });

  test('refuses an api that is not an http(s) URL', () => {
    const crate = parseMetadata('serde', 'crate');
    for (const root of ['not a url', 'file:///etc', 'ftp://x']) {
      assert.throws(() => apiUrl(root, crate), /not a URL|not http/, root);
    }
  });
});
