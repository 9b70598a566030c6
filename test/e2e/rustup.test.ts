/**
 * End to end with the real rustup (`~/.cargo/bin/rustup`), every client in fresh homes, against
 * a dist tree this test builds (real rust-installer archives whose `rustc` prints a chosen
 * version) served by a fake static.rust-lang.org, with cargo-cacher in between.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { toolchainKey } from '../../src/registry/rustup-paths.ts';
import { FakeDistTree, type PublishedRelease } from '../helpers/fake-dist.ts';
import { type FakeDistServer, startFakeDistServer } from '../helpers/fake-dist-server.ts';
import { xzAvailable } from '../helpers/fake-installer.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { installToolchain, makeRustupHome, rustupAvailable } from '../helpers/rustup-sandbox.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

interface World {
  tree: FakeDistTree;
  release: PublishedRelease;
  dist: FakeDistServer;
  proxy: RunningProxy;
  clock: { ms: number };
}

async function startWorld(
  t: { after: (fn: () => Promise<void>) => void },
  rustup: { mirror?: string[] } = {},
  authTokenFile?: string,
): Promise<World> {
  const tree = new FakeDistTree();
  const release = await tree.publish({
    version: '1.99.0',
    date: '2026-11-26',
    xz: await xzAvailable(),
  });
  const dist = await startFakeDistServer(tree);
  t.after(() => dist.close());
  const clock = { ms: Date.parse('2026-12-01T00:00:00Z') };
  const proxy = await startProxy({
    settings: {
      sparseUpstream: undefined,
      rustup: { upstream: dist.url, ...rustup },
      ...(authTokenFile && { authTokenFile }),
    },
    now: () => clock.ms,
  });
  t.after(() => proxy.close());
  return { tree, release, dist, proxy, clock };
}

/** The archives rustup downloads for the minimal profile (xz when the tree has them). */
function minimalArchives(release: PublishedRelease): string[] {
  return ['rustc', 'cargo', 'rust-std'].map((pkg) => {
    const paths = release.archives[pkg] ?? [];
    return (paths.find((path) => path.endsWith('.xz')) ?? paths[0]) as string;
  });
}

test('rustup installs through the proxy, again from the cache alone, and with upstream down', async (t) => {
  if (!(await rustupAvailable(t))) return;
  const { release, dist, proxy, clock } = await startWorld(t);

  const first = await makeRustupHome(t);
  const installed = await installToolchain(first, proxy.url);
  assert.equal(installed.code, 0, installed.stderr);
  const version = await first.run(['run', 'stable', 'rustc', '--version'], proxy.url);
  assert.equal(version.stdout.trim(), release.rustcVersion);
  const fetched = dist.count();
  assert.ok(fetched >= 5, `upstream saw ${fetched} requests`);
  for (const path of minimalArchives(release)) {
    assert.equal(dist.count(path), 1, `${path} fetched once`);
    assert.ok(proxy.instance.catalogue.has(toolchainKey(path.slice(1))), `${path} stored`);
  }

  // A second machine: everything comes from the cache.
  const second = await makeRustupHome(t);
  const again = await installToolchain(second, proxy.url);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(dist.count(), fetched, 'the second install fetched nothing from upstream');

  // Upstream down, and the manifest's TTL long past: the last good pair is served stale.
  dist.down();
  clock.ms += 10 * 60_000;
  const third = await makeRustupHome(t);
  const offline = await installToolchain(third, proxy.url);
  assert.equal(offline.code, 0, offline.stderr);
  const thirdVersion = await third.run(['run', 'stable', 'rustc', '--version'], proxy.url);
  assert.equal(thirdVersion.stdout.trim(), release.rustcVersion);
});

test('an archive corrupted upstream is never stored or served as good; a healthy upstream then works', async (t) => {
  if (!(await rustupAvailable(t))) return;
  const { release, dist, proxy } = await startWorld(t);
  const [rustc] = minimalArchives(release) as [string];
  dist.corrupt(rustc);

  const first = await makeRustupHome(t);
  const failed = await installToolchain(first, proxy.url);
  assert.notEqual(failed.code, 0, 'the install fails');
  const key = toolchainKey(rustc.slice(1));
  assert.equal(proxy.instance.catalogue.has(key), false, 'not in the catalogue');
  assert.equal(await proxy.instance.storage.raw.stat(key), undefined, 'not in storage');
  const broken = await first.run(['run', 'stable', 'rustc', '--version'], proxy.url);
  assert.notEqual(broken.stdout.trim(), release.rustcVersion, 'nothing corrupt was installed');

  dist.heal();
  const second = await makeRustupHome(t);
  const installed = await installToolchain(second, proxy.url);
  assert.equal(installed.code, 0, installed.stderr);
  const version = await second.run(['run', 'stable', 'rustc', '--version'], proxy.url);
  assert.equal(version.stdout.trim(), release.rustcVersion);
  assert.ok(proxy.instance.catalogue.has(key), 'stored once it matched');
});

test('--rustup-mirror stable warms the toolchain before any client asks', async (t) => {
  if (!(await rustupAvailable(t))) return;
  const { release, dist, proxy } = await startWorld(t, { mirror: ['stable'] });
  const keys = minimalArchives(release).map((path) => toolchainKey(path.slice(1)));
  await waitFor(
    () => keys.every((key) => proxy.instance.catalogue.has(key)),
    60_000,
    'the mirror to store the minimal profile',
  );
  const jobs = proxy.deps.jobs.list();
  assert.ok(
    jobs.some((job) => job.kind === 'mirror' && job.description.includes('stable')),
    JSON.stringify(jobs),
  );

  dist.down();
  const home = await makeRustupHome(t);
  const installed = await installToolchain(home, proxy.url);
  assert.equal(installed.code, 0, installed.stderr);
  const version = await home.run(['run', 'stable', 'rustc', '--version'], proxy.url);
  assert.equal(version.stdout.trim(), release.rustcVersion);
});

test('with tokens on, rustup sends the token in RUSTUP_DIST_SERVER as Basic authentication', async (t) => {
  if (!(await rustupAvailable(t))) return;
  const dir = await makeTempDir('rustup-tokens');
  t.after(() => removeTempDir(dir));
  await writeFile(join(dir, 'tokens'), 'ci-token-1 read\n');
  const { release, proxy } = await startWorld(t, {}, join(dir, 'tokens'));

  const refused = await installToolchain(await makeRustupHome(t), proxy.url);
  assert.notEqual(refused.code, 0, 'no token: refused');

  const withToken = new URL(proxy.url);
  withToken.username = 'rustup';
  withToken.password = 'ci-token-1';
  const server = withToken.toString().replace(/\/$/, '');
  const home = await makeRustupHome(t);
  const installed = await installToolchain(home, server);
  assert.equal(installed.code, 0, installed.stderr);
  const version = await home.run(['run', 'stable', 'rustc', '--version'], server);
  assert.equal(version.stdout.trim(), release.rustcVersion);
});
