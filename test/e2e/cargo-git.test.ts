import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { type CargoSandbox, lockedPackages, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { gitEnv } from '../helpers/fake-git-index.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { cargoAvailable } from '../helpers/tools.ts';
import { waitFor } from '../helpers/wait-for.ts';

const execFileAsync = promisify(execFile);

/** b depends on a, so a new a 0.1.x is picked up by `cargo update` through b's requirement. */
const CRATES: FakeCrateSpec[] = [
  { name: 'e2e-a', version: '0.1.0' },
  { name: 'e2e-b', version: '0.1.0', deps: [{ name: 'e2e-a', req: '0.1' }] },
];
const DEPS = { 'e2e-b': '0.1' };
/** How a replaced crates.io is recorded in Cargo.lock (cargo-protocol.md §4). */
const CRATES_IO_SOURCE = 'registry+https://github.com/rust-lang/crates.io-index';

/** The two ways cargo fetches a git index (cargo-protocol.md §2.1). */
const BACKENDS = [
  { name: 'libgit2 (the default)', extraConfig: undefined },
  { name: 'the git CLI (net.git-fetch-with-cli)', extraConfig: 'git-fetch-with-cli = true' },
];

interface World {
  upstream: FakeUpstream;
  /** The upstream's bare git index. */
  bare: string;
  proxy: RunningProxy;
  /** A HOME for the test's own git commands. */
  home: string;
}

/** A fake upstream with a git index, and a proxy mirroring it with a 1 s refresh. */
async function startWorld(t: TestContext): Promise<World> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const dir = await makeTempDir('cargo-git-upstream');
  t.after(() => removeTempDir(dir));
  const bare = await upstream.enableGit(join(dir, 'upstream'));
  const proxy = await startProxy({ upstream, gitUrl: bare, settings: { gitRefreshMs: 1000 } });
  t.after(() => proxy.close());
  const mirror = proxy.deps.git;
  assert.ok(mirror, 'the proxy serves git');
  await waitFor(() => mirror.ready, 20_000, 'the first clone of the git index');
  return { upstream, bare, proxy, home: join(dir, 'home') };
}

async function sandbox(
  t: TestContext,
  proxy: RunningProxy,
  extraConfig: string | undefined,
): Promise<CargoSandbox> {
  const made = await makeCargoSandbox({
    registry: proxy.gitRegistry,
    deps: DEPS,
    ...(extraConfig && { extraConfig }),
  });
  t.after(() => made.remove());
  return made;
}

/** Waits until the proxy's mirror has fetched upstream's current HEAD. */
async function waitForRefresh({ bare, proxy, home }: World): Promise<void> {
  const { stdout } = await execFileAsync('git', ['--git-dir', bare, 'rev-parse', 'HEAD'], {
    env: gitEnv(home),
  });
  const head = stdout.trim();
  const mirror = proxy.deps.git;
  assert.ok(mirror);
  await waitFor(() => mirror.status().upstreamHead === head, 20_000, `the mirror to reach ${head}`);
  assert.equal(mirror.status().lastError, undefined);
}

async function lockedVersion(box: CargoSandbox, name: string): Promise<string | undefined> {
  return (await lockedPackages(box)).find((pkg) => pkg.name === name)?.version;
}

async function storedCrates(proxy: RunningProxy): Promise<string[]> {
  const dir = join(proxy.storageDir, 'crates');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

async function assertStored(proxy: RunningProxy, name: string, version: string): Promise<void> {
  const stored = await storedCrates(proxy);
  const file = `${name}-${version}.crate`;
  assert.ok(
    stored.some((path) => path.endsWith(`/${file}`) || path === file),
    `${file} in ${stored.join(', ')}`,
  );
}

/** The index cargo keeps is a git repository (so the git protocol, not sparse, was used). */
async function assertGitIndex(box: CargoSandbox): Promise<void> {
  const indexes = join(box.cargoHome, 'registry', 'index');
  const names = await readdir(indexes);
  assert.equal(names.length, 1, `one registry index: ${names.join(', ')}`);
  await access(join(indexes, names[0] as string, '.git'));
}

describe('cargo through the git index', () => {
  for (const backend of BACKENDS) {
    test(`with ${backend.name}: resolves, fetches and follows new versions and a squash`, async (t) => {
      if (!(await cargoAvailable(t))) return;
      const world = await startWorld(t);
      const { upstream, proxy } = world;
      const box = await sandbox(t, proxy, backend.extraConfig);

      const resolved = await box.cargo(['generate-lockfile', '-v']);
      if (backend.extraConfig) assert.match(resolved.stderr, /git fetch/, 'the git CLI fetched');
      await box.cargo(['fetch']);
      await assertGitIndex(box);
      const locked = await lockedPackages(box);
      assert.deepEqual(locked.map((pkg) => `${pkg.name} ${pkg.version}`).sort(), [
        'e2e-a 0.1.0',
        'e2e-b 0.1.0',
      ]);
      for (const pkg of locked) {
        assert.equal(pkg.source, CRATES_IO_SOURCE);
        assert.equal(pkg.checksum, upstream.crate(pkg.name, pkg.version).checksum, pkg.name);
      }
      await assertStored(proxy, 'e2e-a', '0.1.0');
      await assertStored(proxy, 'e2e-b', '0.1.0');
      assert.equal(upstream.count('/dl/'), 2, 'each crate came through the proxy once');

      // A new version upstream (a new commit): the next refresh brings it to cargo update.
      await upstream.addCrate({ name: 'e2e-a', version: '0.1.1' });
      await waitForRefresh(world);
      await box.cargo(['update']);
      assert.equal(await lockedVersion(box, 'e2e-a'), '0.1.1');
      await box.cargo(['fetch']);
      await assertStored(proxy, 'e2e-a', '0.1.1');

      // crates.io squashes its history: cargo's forced fetch of HEAD copes with the rewrite.
      await upstream.squashGitHistory();
      await waitForRefresh(world);
      await box.cargo(['update']);
      await box.cargo(['fetch']);
      assert.equal(await lockedVersion(box, 'e2e-a'), '0.1.1');

      // And the squashed history keeps growing as usual.
      await upstream.addCrate({ name: 'e2e-a', version: '0.1.2' });
      await waitForRefresh(world);
      await box.cargo(['update']);
      assert.equal(await lockedVersion(box, 'e2e-a'), '0.1.2');
      await box.cargo(['fetch']);
      await assertStored(proxy, 'e2e-a', '0.1.2');
      const a = upstream.crate('e2e-a', '0.1.2');
      const final = (await lockedPackages(box)).find((pkg) => pkg.name === 'e2e-a');
      assert.equal(final?.checksum, a.checksum);
    });
  }
});
