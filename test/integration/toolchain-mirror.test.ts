/**
 * The toolchain mirror (`--rustup-mirror`) and `cargo-cacher prefetch --toolchain`: the profile's
 * archives for the targets asked, nothing more; passes that skip what is held; a new stable
 * release followed, with the pins moving to it; the job in /api/v1/jobs.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { RustupProfile } from '../../src/config.ts';
import { toolchainKey } from '../../src/registry/rustup-paths.ts';
import { runCliCommand } from '../helpers/cli-process.ts';
import { FakeDistTree, hostTriple, type PublishedRelease } from '../helpers/fake-dist.ts';
import { type FakeDistServer, startFakeDistServer } from '../helpers/fake-dist-server.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const OTHER_TARGET = 'aarch64-apple-darwin';

interface World {
  tree: FakeDistTree;
  release: PublishedRelease;
  dist: FakeDistServer;
  proxy: RunningProxy;
  clock: { ms: number };
}

async function startWorld(
  t: TestContext,
  mirror: { profile?: RustupProfile; targets?: string[] } = {},
): Promise<World> {
  const host = await hostTriple();
  const tree = new FakeDistTree();
  const release = await tree.publish({
    version: '1.99.0',
    date: '2026-11-26',
    targets: [host, OTHER_TARGET],
  });
  const dist = await startFakeDistServer(tree);
  t.after(() => dist.close());
  const clock = { ms: Date.parse('2026-12-01T00:00:00Z') };
  const proxy = await startProxy({
    settings: {
      sparseUpstream: undefined,
      rustup: {
        upstream: dist.url,
        mirror: ['stable'],
        targets: mirror.targets ?? [host],
        ...(mirror.profile && { profile: mirror.profile }),
      },
    },
    now: () => clock.ms,
  });
  t.after(() => proxy.close());
  await proxy.instance.toolchainMirror?.idle();
  return { tree, release, dist, proxy, clock };
}

/** Archive paths of `packages` for `target` (the `*` ones for any). */
function archivesOf(release: PublishedRelease, packages: string[], target: string): string[] {
  return packages.flatMap((pkg) =>
    (release.archives[pkg] ?? []).filter((path) => pkg === 'rust-src' || path.includes(target)),
  );
}

function held(proxy: RunningProxy, path: string): boolean {
  return proxy.instance.catalogue.has(toolchainKey(path.slice(1)));
}

function pinned(proxy: RunningProxy, path: string): boolean {
  return proxy.instance.catalogue.get(toolchainKey(path.slice(1)))?.pinned === true;
}

describe('toolchain mirror', () => {
  test("the minimal profile for this machine's target, pinned, and the job listed", async (t) => {
    const host = await hostTriple();
    const { release, proxy } = await startWorld(t);
    for (const path of archivesOf(release, ['rustc', 'cargo', 'rust-std'], host)) {
      assert.ok(held(proxy, path), `${path} held`);
      assert.ok(pinned(proxy, path), `${path} pinned`);
    }
    for (const path of [
      ...archivesOf(release, ['rust-docs', 'rust-src', 'rust'], host),
      ...archivesOf(release, ['rustc'], OTHER_TARGET),
    ]) {
      assert.equal(held(proxy, path), false, `${path} not asked for`);
    }
    for (const path of [
      '/dist/channel-rust-stable.toml',
      '/dist/channel-rust-stable.toml.sha256',
    ]) {
      assert.ok(pinned(proxy, path), `${path} pinned`);
    }
    const jobs = JSON.parse((await httpGet(`${proxy.url}/api/v1/jobs`)).body.toString()) as {
      jobs: { kind: string; description: string; state: string; counts: { fetched: number } }[];
    };
    const job = jobs.jobs.find((listed) => listed.description.startsWith('toolchain mirror'));
    assert.equal(job?.kind, 'mirror');
    assert.equal(job?.state, 'done');
    assert.equal(job?.counts.fetched, 4, 'the manifest and three archives');
  });

  test('the default profile for two targets', async (t) => {
    const host = await hostTriple();
    const { release, proxy } = await startWorld(t, {
      profile: 'default',
      targets: [host, OTHER_TARGET],
    });
    for (const target of [host, OTHER_TARGET]) {
      for (const path of archivesOf(release, ['rustc', 'cargo', 'rust-std', 'rust-docs'], target)) {
        assert.ok(held(proxy, path), `${path} held`);
      }
    }
    for (const path of archivesOf(release, ['rust-src'], host)) {
      assert.equal(held(proxy, path), false, 'rust-src is in the complete profile only');
    }
  });

  test('a second pass fetches nothing; a new stable release is followed and the pins move to it', async (t) => {
    const host = await hostTriple();
    const { tree, release, dist, proxy, clock } = await startWorld(t);
    const mirror = proxy.instance.toolchainMirror;
    assert.ok(mirror);
    const requests = dist.count();
    mirror.requestPass();
    await mirror.idle();
    assert.equal(dist.count(), requests, 'fresh manifest, every archive held: no upstream request');
    assert.equal(mirror.lastJob?.counts.fetched, 0);
    assert.equal(mirror.lastJob?.counts.cached, 4);

    const next = await tree.publish({ version: '1.100.0', date: '2027-01-08', targets: [host] });
    clock.ms += 10 * 60_000;
    mirror.requestPass();
    await mirror.idle();
    for (const path of archivesOf(next, ['rustc', 'cargo', 'rust-std'], host)) {
      assert.ok(held(proxy, path), `${path} of the new release held`);
      assert.ok(pinned(proxy, path), `${path} pinned`);
    }
    for (const path of archivesOf(release, ['rustc', 'cargo', 'rust-std'], host)) {
      assert.ok(held(proxy, path), `${path} of the old release still held`);
      assert.equal(pinned(proxy, path), false, `${path} no longer pinned`);
    }
  });

  test('cargo-cacher prefetch --toolchain fills a storage root for CI and exits 0; 1 when it cannot', async (t) => {
    const host = await hostTriple();
    const tree = new FakeDistTree();
    const release = await tree.publish({ version: '1.99.0', date: '2026-11-26', targets: [host] });
    const dist = await startFakeDistServer(tree);
    t.after(() => dist.close());
    const dir = await makeTempDir('prefetch-toolchain');
    t.after(() => removeTempDir(dir));
    const args = ['prefetch', '-i', dir, '--rustup-upstream', dist.url, '--rustup-targets', host];
    const ok = await runCliCommand([...args, '--toolchain', 'stable', '--toolchain', '1.99.0']);
    assert.equal(ok.code, 0, ok.stderr);
    const proxy = await startProxy({
      storageDir: dir,
      settings: { sparseUpstream: undefined, offline: true },
    });
    t.after(() => proxy.close());
    for (const path of archivesOf(release, ['rustc', 'cargo', 'rust-std'], host)) {
      assert.ok(held(proxy, path), `${path} held`);
      assert.equal(pinned(proxy, path), false, 'a prefetch pins nothing');
    }
    await proxy.close();

    const failed = await runCliCommand([...args, '--toolchain', '1.98.0']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /failed: toolchain 1\.98\.0/);
  });
});
