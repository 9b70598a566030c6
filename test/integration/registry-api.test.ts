import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { ConfigSettings } from '../../src/config.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet, type RawResponse } from '../helpers/http-get.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { type RunningProxy, startProxy, startUpstreamAndProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CRATES: FakeCrateSpec[] = [
  { name: 'serde', version: '1.0.0' },
  { name: 'serde', version: '1.0.1' },
  { name: 'serde_json', version: '1.0.0' },
  { name: 'plus', version: '1.0.0+build.5' },
];
const DESCRIPTIONS = { serde: 'A generic serialization framework' };
const FIVE_MINUTES = 5 * 60_000;

interface World {
  upstream: FakeUpstream;
  proxy: RunningProxy;
  clock: ManualClock;
}

/** A fake crates.io and a proxy in front of it, both on a hand-moved clock. */
async function setup(
  t: TestContext,
  options: { settings?: ConfigSettings; storageDir?: string } = {},
): Promise<World> {
  const clock = new ManualClock(Date.now());
  const world = await startUpstreamAndProxy(t, {
    upstream: { crates: CRATES, descriptions: DESCRIPTIONS },
    now: clock.now,
    sleep: clock.sleep,
    ...options,
  });
  return { ...world, clock };
}

/**
 * GETs through the proxy, moving the clock a second whenever the request waits for the API's
 * rate limit (its turn comes when the clock passes it, not after real time).
 */
async function get(
  world: Pick<World, 'clock' | 'proxy'>,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  let done = false;
  const pending = httpGet(`${world.proxy.url}${path}`, headers).finally(() => {
    done = true;
  });
  while (!done) {
    if (world.clock.sleeping > 0) await world.clock.advance(1000);
    else await Promise.race([pending.catch(() => undefined), delay(5)]);
  }
  return pending;
}

function json(response: RawResponse): unknown {
  return JSON.parse(response.body.toString('utf8'));
}

function apiRequests(upstream: FakeUpstream): number {
  return upstream.count('/api/');
}

function detailOf(response: RawResponse): string {
  return (json(response) as { errors: { detail: string }[] }).errors[0]?.detail ?? '';
}

describe('registry API: search', () => {
  test("answers from upstream's API, then from the cache for five minutes", async (t) => {
    const world = await setup(t);
    const { upstream, clock } = world;
    const path = '/api/v1/crates?q=serde&per_page=10';
    const first = await get(world, path);
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache-status'], 'MISS');
    assert.match(String(first.headers['content-type']), /^application\/json/);
    assert.deepEqual(json(first), json(await httpGet(`${upstream.url}${path}`)));
    assert.deepEqual(json(first), {
      crates: [
        { name: 'serde', max_version: '1.0.1', description: DESCRIPTIONS.serde },
        { name: 'serde_json', max_version: '1.0.0', description: 'A fake crate named serde_json' },
      ],
      meta: { total: 2 },
    });
    const sent = upstream.requests.find((request) => request.path.startsWith('/api/'));
    assert.equal(sent?.path, path);
    assert.match(String(sent?.headers['user-agent']), /^cargo-cacher\/\S+ \(\+https?:\/\/\S+\)$/);

    upstream.resetLog();
    const again = await get(world, '/api/v1/crates?q=%20SERDE%20&per_page=10');
    assert.equal(again.headers['x-cache-status'], 'HIT', 'the same search, normalised');
    assert.deepEqual(again.body, first.body);
    assert.equal(apiRequests(upstream), 0);

    await clock.advance(FIVE_MINUTES);
    const later = await get(world, path);
    assert.equal(later.headers['x-cache-status'], 'REVALIDATED');
    assert.equal(apiRequests(upstream), 1);
  });

  test('is served stale when upstream is down, and fails clearly when nothing is cached', async (t) => {
    const world = await setup(t);
    const cached = await get(world, '/api/v1/crates?q=serde&per_page=10');
    await world.upstream.stop();
    await world.clock.advance(FIVE_MINUTES + 1);

    const stale = await get(world, '/api/v1/crates?q=serde&per_page=10');
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.deepEqual(stale.body, cached.body);

    const missing = await get(world, '/api/v1/crates?q=nothing-cached&per_page=10');
    assert.equal(missing.status, 503);
    assert.match(detailOf(missing), /unreachable/);
  });
});

describe('registry API: crate metadata', () => {
  const PATHS = [
    '/api/v1/crates/serde',
    '/api/v1/crates/serde/versions',
    '/api/v1/crates/serde/1.0.1',
    '/api/v1/crates/serde/owners',
    '/api/v1/crates/plus/1.0.0+build.5',
  ];

  test('passes upstream answers through and keeps them in storage under api/', async (t) => {
    const world = await setup(t);
    const { upstream, proxy } = world;
    for (const path of PATHS) {
      const response = await get(world, path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers['x-cache-status'], 'MISS', path);
      assert.deepEqual(json(response), json(await httpGet(`${upstream.url}${path}`)), path);
      assert.ok(response.headers.etag, path);
    }
    const versionRequest = upstream.requests.find((r) => r.path.includes('plus/'));
    assert.equal(versionRequest?.path, '/api/v1/crates/plus/1.0.0%2Bbuild.5');
    const stored = proxy.instance.catalogue.get('api/crates/serde/crate.json');
    assert.equal(stored?.area, 'other');
    assert.ok(proxy.instance.catalogue.has('api/crates/plus/versions/1.0.0+build.5.json'));
  });

  test('revalidates after the TTL with upstream validators (a 304 renews the copy)', async (t) => {
    const world = await setup(t);
    const { upstream, clock } = world;
    const first = await get(world, '/api/v1/crates/serde');
    const upstreamEtag = (await httpGet(`${upstream.url}/api/v1/crates/serde`)).headers.etag;
    upstream.resetLog();

    assert.equal((await get(world, '/api/v1/crates/serde')).headers['x-cache-status'], 'HIT');
    assert.equal(apiRequests(upstream), 0);
    await clock.advance(FIVE_MINUTES);
    const renewed = await get(world, '/api/v1/crates/serde');
    assert.equal(renewed.headers['x-cache-status'], 'REVALIDATED');
    assert.deepEqual(renewed.body, first.body);
    const revalidation = upstream.requests.find((r) => r.path === '/api/v1/crates/serde');
    assert.equal(revalidation?.headers['if-none-match'], upstreamEtag);

    const client = await get(world, '/api/v1/crates/serde', {
      'if-none-match': String(first.headers.etag),
    });
    assert.equal(client.status, 304, 'a client holding our ETag gets a 304');
  });

  test('survives a restart and is served stale with upstream down', async (t) => {
    const storageDir = await makeTempDir('registry-api-store');
    t.after(() => removeTempDir(storageDir));
    const world = await setup(t, { storageDir });
    const first = await get(world, '/api/v1/crates/serde/versions');
    await world.proxy.close();
    await world.upstream.stop();

    const clock = world.clock;
    const proxy = await startProxy({
      upstream: world.upstream,
      storageDir,
      now: clock.now,
      sleep: clock.sleep,
    });
    t.after(() => proxy.close());
    const hit = await get({ clock, proxy }, '/api/v1/crates/serde/versions');
    assert.equal(hit.headers['x-cache-status'], 'HIT');
    assert.deepEqual(hit.body, first.body);
    await clock.advance(FIVE_MINUTES + 1);
    const stale = await get({ clock, proxy }, '/api/v1/crates/serde/versions');
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.deepEqual(stale.body, first.body);
  });

  test("answers upstream's 404 for an unknown crate and remembers it for a minute", async (t) => {
    const world = await setup(t);
    const missing = await get(world, '/api/v1/crates/no-such-crate');
    assert.equal(missing.status, 404);
    assert.match(detailOf(missing), /crate `no-such-crate` does not exist/);
    world.upstream.resetLog();
    assert.equal((await get(world, '/api/v1/crates/no-such-crate')).status, 404);
    assert.equal(apiRequests(world.upstream), 0);
    await world.clock.advance(60_000);
    assert.equal((await get(world, '/api/v1/crates/no-such-crate')).status, 404);
    assert.equal(apiRequests(world.upstream), 1);
  });

  test('refuses bad names, versions and parameters with 400, asking upstream nothing', async (t) => {
    const world = await setup(t);
    const refused: [string, RegExp][] = [
      ['/api/v1/crates/..%2F..%2Fetc', /invalid crate name/],
      ['/api/v1/crates/serde/1.0', /invalid version/],
      ['/api/v1/crates/serde/latest', /invalid version/],
      ['/api/v1/crates?q=x&per_page=1000', /per_page must be a whole number from 1 to 100/],
      ['/api/v1/crates?q=a&q=b', /q is given more than once/],
    ];
    for (const [path, detail] of refused) {
      const response = await get(world, path);
      assert.equal(response.status, 400, path);
      assert.match(detailOf(response), detail, path);
    }
    assert.equal((await get(world, '/api/v1/crates/serde/1.0.0/other')).status, 404);
    assert.equal(apiRequests(world.upstream), 0);
  });

  test('leaves crate downloads where they were', async (t) => {
    const world = await setup(t);
    const download = await get(world, '/api/v1/crates/serde/1.0.0/download');
    assert.equal(download.status, 200);
    assert.equal(download.headers['content-type'], 'application/gzip');
    assert.deepEqual(download.body, world.upstream.crate('serde', '1.0.0').bytes);
  });
});

describe('registry API: writes', () => {
  const WRITES: [string, string, RegExp, string][] = [
    ['PUT', '/api/v1/crates/new', /publish to the upstream registry/, 'GET, HEAD'],
    ['DELETE', '/api/v1/crates/serde/1.0.0/yank', /yank on the upstream registry/, ''],
    ['PUT', '/api/v1/crates/serde/1.0.0/unyank', /yank on the upstream registry/, ''],
    ['PUT', '/api/v1/crates/serde/owners', /change owners on the upstream registry/, 'GET, HEAD'],
    ['DELETE', '/api/v1/crates/serde/owners', /change owners/, 'GET, HEAD'],
    ['POST', '/api/v1/crates', /takes no writes/, 'GET, HEAD'],
    ['PATCH', '/api/v2/anything', /takes no writes/, 'GET, HEAD'],
  ];

  test('answer 405 with a line cargo prints, before reading the body', async (t) => {
    const world = await setup(t);
    // As large as a real crate upload: refused without being read (no 413, no 415).
    const body = Buffer.alloc(2 * 1024 * 1024, 1);
    for (const [method, path, detail, allow] of WRITES) {
      const response = await fetch(`${world.proxy.url}${path}`, {
        method,
        body,
        headers: { 'content-type': 'application/octet-stream' },
      });
      const text = await response.text();
      assert.equal(response.status, 405, `${method} ${path}: ${text}`);
      assert.equal(response.headers.get('allow'), allow, `${method} ${path}`);
      const error = (JSON.parse(text) as { errors: { detail: string; code: string }[] }).errors[0];
      assert.match(error?.detail ?? '', /^cargo-cacher is a cache, not a registry: /);
      assert.match(error?.detail ?? '', detail);
      assert.equal(error?.code, 'CARGO_CACHER_NOT_A_REGISTRY');
    }
    assert.equal(apiRequests(world.upstream), 0);
  });

  test('the owners list is still a read', async (t) => {
    const world = await setup(t);
    const owners = await get(world, '/api/v1/crates/serde/owners');
    assert.equal(owners.status, 200);
    assert.deepEqual(json(owners), { users: [{ id: 1, login: 'fake-owner', name: 'Fake Owner' }] });
  });
});

describe('registry API: offline', () => {
  test('serves what is cached and says why the rest is not there', async (t) => {
    const storageDir = await makeTempDir('registry-api-offline');
    t.after(() => removeTempDir(storageDir));
    const world = await setup(t, { storageDir });
    const cached = await get(world, '/api/v1/crates/serde');
    await get(world, '/api/v1/crates?q=serde&per_page=10');
    await get(world, '/index/config.json');
    await world.proxy.close();
    world.upstream.resetLog();

    const clock = world.clock;
    const proxy = await startProxy({
      upstream: world.upstream,
      storageDir,
      settings: { offline: true },
      now: clock.now,
      sleep: clock.sleep,
    });
    t.after(() => proxy.close());
    await clock.advance(FIVE_MINUTES * 10);
    const config = json(await get({ clock, proxy }, '/index/config.json')) as { api?: string };
    assert.equal(config.api, proxy.url, 'config.json still sends cargo search here');
    const hit = await get({ clock, proxy }, '/api/v1/crates/serde');
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['x-cache-status'], 'HIT');
    assert.deepEqual(hit.body, cached.body);
    for (const path of ['/api/v1/crates/serde_json', '/api/v1/crates?q=serde&per_page=10']) {
      const missing = await get({ clock, proxy }, path);
      assert.equal(missing.status, 404, path);
      assert.match(detailOf(missing), /is not cached, and this cache is offline/, path);
    }
    assert.equal(world.upstream.requests.length, 0, 'offline asks upstream nothing');
  });
});

describe('registry API: the rate limit toward upstream', () => {
  test('a burst asks upstream once per second and overflows its queue with 429', async (t) => {
    const world = await setup(t);
    const { upstream, proxy, clock } = world;
    // Warm config.json first: it names the API and is not rate-limited.
    assert.equal((await httpGet(`${proxy.url}/index/config.json`)).status, 200);
    upstream.resetLog();

    const BURST = 40;
    const responses: RawResponse[] = [];
    const pending = Array.from({ length: BURST }, (_, i) =>
      httpGet(`${proxy.url}/api/v1/crates?q=burst-${i}&per_page=10`).then((response) => {
        responses.push(response);
        return response;
      }),
    );
    const refused = () => responses.filter((response) => response.status === 429);
    try {
      // One goes at once, 32 wait in the queue, the rest are refused at once.
      await waitFor(() => refused().length === BURST - 33, 10_000, 'the refusals');
      await waitFor(() => apiRequests(upstream) === 1, 10_000, 'the first request upstream');
      for (const refusal of refused()) {
        assert.equal(refusal.headers['retry-after'], '1');
        assert.match(detailOf(refusal), /32 requests are already waiting/);
      }
      for (let second = 1; second <= 3; second++) {
        await clock.advance(999);
        assert.equal(apiRequests(upstream), second, 'nothing before the second is over');
        await clock.advance(1);
        await waitFor(() => apiRequests(upstream) === second + 1, 10_000, `request ${second + 1}`);
      }
    } finally {
      // Let the rest through, a second at a time (also when an assertion failed, so the
      // proxy can close).
      while (responses.length < BURST) {
        if (clock.sleeping > 0) await clock.advance(1000);
        else await delay(5);
      }
    }
    await Promise.all(pending);
    assert.equal(apiRequests(upstream), 33);
    assert.equal(responses.filter((response) => response.status === 200).length, 33);
    assert.equal(refused().length, 7);
  });
});

describe('registry API: access control and statistics', () => {
  const READ = 'read-token-4c2a';

  test('needs a token like every route; any valid token gets the 405 of a write', async (t) => {
    const dir = await makeTempDir('registry-api-auth');
    t.after(() => removeTempDir(dir));
    const tokenFile = join(dir, 'tokens');
    await writeFile(tokenFile, `${READ} read\n`);
    const world = await setup(t, { settings: { authTokenFile: tokenFile } });

    const anonymous = await get(world, '/api/v1/crates?q=serde&per_page=10');
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers['www-authenticate']), /^Cargo login_url=/);
    const search = await get(world, '/api/v1/crates?q=serde&per_page=10', { authorization: READ });
    assert.equal(search.status, 200);

    const publish = (authorization?: string) =>
      fetch(`${world.proxy.url}/api/v1/crates/new`, {
        method: 'PUT',
        body: 'x',
        headers: authorization ? { authorization } : {},
      });
    assert.equal((await publish()).status, 401);
    assert.equal((await publish(READ)).status, 405, 'not 403: no token could publish here');
    const sneaky = await fetch(`${world.proxy.url}/api/v1/crates/../prefetch`, {
      method: 'POST',
      body: 'serde=1.0.0\n',
      headers: { authorization: READ, 'content-type': 'text/plain' },
    });
    assert.notEqual(sneaky.status, 202, 'a read token cannot start a prefetch through ..');
    assert.equal(world.proxy.deps.jobs.list().length, 0);
  });

  test('are counted as their own kind in /metrics', async (t) => {
    const world = await setup(t);
    await get(world, '/api/v1/crates/serde');
    await get(world, '/api/v1/crates/serde');
    await waitFor(
      async () => {
        const text = (await httpGet(`${world.proxy.url}/metrics`)).body.toString();
        return /cargo_cacher_requests_total\{kind="registry-api",outcome="hit"\} 1/.test(text);
      },
      10_000,
      'the registry API kind in /metrics',
    );
  });
});
