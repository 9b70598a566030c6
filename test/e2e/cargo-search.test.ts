import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type CargoSandbox, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet, type RawResponse } from '../helpers/http-get.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { type RunningProxy, startUpstreamAndProxy } from '../helpers/proxy.ts';
import { cargoAvailable } from '../helpers/tools.ts';

const CRATES: FakeCrateSpec[] = [
  { name: 'serde', version: '1.0.0' },
  { name: 'serde', version: '1.0.1' },
  { name: 'serde_json', version: '1.0.0' },
  { name: 'tokio', version: '1.2.0' },
];
const DESCRIPTIONS = {
  serde: 'A generic serialization framework',
  serde_json: 'A JSON serialization file format',
};
const SIX_MINUTES = 6 * 60_000;
/** What `cargo search serde` prints for the fake registry, one line per crate. */
const SERDE_LINES = [
  /^serde = "1\.0\.1"\s+# A generic serialization framework$/m,
  /^serde_json = "1\.0\.0"\s+# A JSON serialization file format$/m,
];

interface World {
  upstream: FakeUpstream;
  proxy: RunningProxy;
  clock: ManualClock;
}

/** The fake crates.io and a proxy in front of it, on a hand-moved clock. */
async function startWorld(t: TestContext): Promise<World> {
  const clock = new ManualClock(Date.now());
  const world = await startUpstreamAndProxy(t, {
    upstream: { crates: CRATES, descriptions: DESCRIPTIONS },
    now: clock.now,
    sleep: clock.sleep,
  });
  return { ...world, clock };
}

/**
 * A fresh CARGO_HOME with the mirror as `[registries.mirror]` replacing crates.io (the form
 * `cargo search --registry mirror` needs), and a token cargo needs before it tries a write.
 */
async function sandbox(t: TestContext, proxy: RunningProxy): Promise<CargoSandbox> {
  const made = await makeCargoSandbox({
    registry: proxy.sparseRegistry,
    registryName: 'mirror',
    deps: {},
    env: { CARGO_REGISTRIES_MIRROR_TOKEN: 'any-token' },
  });
  t.after(() => made.remove());
  return made;
}

/** Runs cargo, expecting it to fail; returns what it printed. */
async function cargoFails(box: CargoSandbox, args: string[]): Promise<string> {
  try {
    await box.cargo(args);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`cargo ${args.join(' ')} succeeded`);
}

/**
 * Waits for `work` (a request, a cargo run), moving the clock a second whenever the proxy waits
 * for the API's rate limit: its turn comes when the clock passes it, not after real time.
 */
async function onClock<T>(clock: ManualClock, work: Promise<T>): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  while (!done) {
    if (clock.sleeping > 0) await clock.advance(1000);
    else await Promise.race([settled.catch(() => undefined), delay(5)]);
  }
  return settled;
}

function get(world: World, path: string): Promise<RawResponse> {
  return onClock(world.clock, httpGet(`${world.proxy.url}${path}`));
}

/** Runs cargo in the sandbox on the world's clock. */
function cargo(world: World, box: CargoSandbox, args: string[]) {
  return onClock(world.clock, box.cargo(args));
}

describe('cargo search and the registry API through the cache', () => {
  test('cargo search --registry mirror prints upstream results, and again with upstream down', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const world = await startWorld(t);
    const { upstream, proxy, clock } = world;

    const first = await sandbox(t, proxy);
    const found = await cargo(world, first, ['search', '--registry', 'mirror', 'serde']);
    for (const line of SERDE_LINES) assert.match(found.stdout, line);
    assert.doesNotMatch(found.stdout, /tokio/);
    const searches = upstream.requests.filter((r) => r.path.startsWith('/api/v1/crates?'));
    assert.deepEqual(
      searches.map((r) => r.path),
      ['/api/v1/crates?q=serde&per_page=10'],
      'cargo asked the cache, the cache asked upstream once',
    );
    assert.match(String(searches[0]?.headers['user-agent']), /^cargo-cacher\//);

    await upstream.stop();
    // A second machine, with upstream gone: within the TTL, then past it (stale).
    const second = await sandbox(t, proxy);
    const cached = await cargo(world, second, ['search', '--registry', 'mirror', 'serde']);
    assert.equal(cached.stdout, found.stdout);
    await clock.advance(SIX_MINUTES);
    const stale = await cargo(world, second, [
      'search',
      '--registry',
      'mirror',
      'serde',
      '--limit',
      '10',
    ]);
    assert.equal(stale.stdout, found.stdout);
  });

  test('crate metadata is cached and served stale with upstream down; cargo owner reads it', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const world = await startWorld(t);
    const paths = [
      '/api/v1/crates/serde',
      '/api/v1/crates/serde/versions',
      '/api/v1/crates/serde/1.0.1',
    ];
    const answers = new Map<string, Buffer>();
    for (const path of paths) {
      const response = await get(world, path);
      assert.equal(response.status, 200, path);
      answers.set(path, response.body);
    }
    const box = await sandbox(t, world.proxy);
    const owners = await cargo(world, box, ['owner', '--list', '--registry', 'mirror', 'serde']);
    assert.match(owners.stdout, /fake-owner \(Fake Owner\)/);

    await world.upstream.stop();
    await world.clock.advance(SIX_MINUTES);
    for (const path of paths) {
      const response = await get(world, path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers['x-cache-status'], 'STALE', path);
      assert.deepEqual(response.body, answers.get(path), path);
    }
    const again = await cargo(world, box, ['owner', '--list', '--registry', 'mirror', 'serde']);
    assert.equal(again.stdout, owners.stdout);
  });

  test('cargo publish and cargo yank print why a cache takes no writes', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const world = await startWorld(t);
    const box = await sandbox(t, world.proxy);
    world.upstream.resetLog();

    const publish = await cargoFails(box, [
      'publish',
      '--registry',
      'mirror',
      '--no-verify',
      '--allow-dirty',
    ]);
    assert.match(
      publish,
      /cargo-cacher is a cache, not a registry: publish to the upstream registry/,
    );
    const yank = await cargoFails(box, [
      'yank',
      '--registry',
      'mirror',
      '--version',
      '1.0.0',
      'serde',
    ]);
    assert.match(yank, /cargo-cacher is a cache, not a registry: yank on the upstream registry/);
    assert.equal(world.upstream.count('/api/'), 0, 'no write reached upstream');
  });
});
