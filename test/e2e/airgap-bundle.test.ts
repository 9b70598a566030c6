/**
 * Across an air gap with the real cargo: a project is built against a connected cargo-cacher,
 * `cargo-cacher export --lock` bundles what its Cargo.lock needs, `cargo-cacher import` puts the
 * bundle into an empty storage, and a cargo-cacher with `--offline` and no upstream at all (the
 * fake crates.io is gone) lets a fresh cargo resolve, fetch and build the project, over the
 * sparse protocol and over git (a git index built from the imported index files).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { type CargoSandbox, lockedPackages, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { runCliCommand } from '../helpers/cli-process.ts';
import { type FakeCrateSpec, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { cargoAvailable } from '../helpers/tools.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** gap-c depends on gap-b depends on gap-a; plus a mixed-case name and build metadata. */
const CRATES: FakeCrateSpec[] = [
  { name: 'gap-a', version: '0.1.0' },
  { name: 'gap-b', version: '0.1.0', deps: [{ name: 'gap-a', req: '0.1' }] },
  { name: 'gap-c', version: '0.2.0', deps: [{ name: 'gap-b', req: '0.1' }] },
  { name: 'GapCase', version: '0.3.0' },
  { name: 'gapplus', version: '1.0.0+build.5' },
  { name: 'gap-unused', version: '1.0.0' },
];
const DEPS = { 'gap-c': '0.2', GapCase: '0.3', gapplus: '1.0.0' };
const MAIN_RS = [
  '#![allow(non_snake_case)]',
  'fn main() {',
  '    println!("{} {} {}", gap_c::dep_gap_b(), GapCase::name(), gapplus::name());',
  '}',
  '',
].join('\n');
const EXPECTED_OUTPUT = 'gap-b-0.1.0 GapCase-0.3.0 gapplus-1.0.0+build.5';

async function sandbox(t: TestContext, registry: string): Promise<CargoSandbox> {
  const box = await makeCargoSandbox({ registry, deps: DEPS, mainRs: MAIN_RS });
  t.after(() => box.remove());
  return box;
}

/** A fresh cargo resolves, fetches, builds and runs the project. */
async function buildFresh(t: TestContext, registry: string): Promise<CargoSandbox> {
  const box = await sandbox(t, registry);
  await box.cargo(['generate-lockfile']);
  await box.cargo(['fetch']);
  await box.cargo(['build', '--offline']);
  const run = await box.cargo(['run', '--offline', '--quiet']);
  assert.equal(run.stdout.trim(), EXPECTED_OUTPUT);
  return box;
}

async function startFarSide(
  t: TestContext,
  storageDir: string,
  dir: string,
): Promise<RunningProxy> {
  const proxy = await startProxy({
    storageDir,
    // There is no upstream git index on the far side: one is built from the held files.
    gitUrl: join(dir, 'no-upstream.git'),
    // A bundle is older than any TTL by the time it is imported and served.
    settings: { offline: true, indexTtlMs: 0 },
  });
  t.after(() => proxy.close());
  const git = proxy.deps.git;
  assert.ok(git, 'the far side serves git');
  await waitFor(() => git.ready, 30_000, 'the git index built from the held files');
  return proxy;
}

describe('an air-gapped cargo-cacher fed by a bundle', { timeout: 300_000 }, () => {
  test('export --lock, import into empty storage, and build offline over sparse and git', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const dir = await makeTempDir('airgap');
    t.after(() => removeTempDir(dir));
    const upstream = await startFakeUpstream({ crates: CRATES });
    t.after(() => upstream.close());

    // The connected side: a project built through cargo-cacher.
    const connectedStore = join(dir, 'connected');
    const connected = await startProxy({
      upstream,
      storageDir: connectedStore,
      settings: { indexTtlMs: 0 },
    });
    t.after(() => connected.close());
    const project = await buildFresh(t, connected.sparseRegistry);
    const locked = await lockedPackages(project);
    // A release the project never fetched: its index line is held, its crate is not.
    await upstream.addCrate({ name: 'gap-a', version: '0.1.1' });
    assert.equal((await httpGet(`${connected.url}/index/ga/p-/gap-a`)).status, 200);
    await connected.close();

    const bundle = join(dir, 'carry', 'bundle.tar');
    const exported = await runCliCommand(
      ['export', bundle, '--lock', join(project.projectDir, 'Cargo.lock'), '-i', connectedStore],
      120_000,
    );
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /exported 5 crates and 5 index files/);

    // The far side: nothing reaches the fake crates.io any more.
    await upstream.close();
    const farStore = join(dir, 'far');
    const imported = await runCliCommand(['import', bundle, '-i', farStore], 120_000);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /imported 5 crates and 5 index files .*, 0 refused/);
    const far = await startFarSide(t, farStore, dir);

    const overGit = await buildFresh(t, far.gitRegistry);
    assert.deepEqual(await lockedPackages(overGit), locked, 'the same resolution over git');
    const overSparse = await buildFresh(t, far.sparseRegistry);
    assert.deepEqual(await lockedPackages(overSparse), locked, 'the same resolution over sparse');
  });
});
