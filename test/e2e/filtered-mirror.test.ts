import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { JobSnapshot, PackageReport } from '../../src/jobs/job.ts';
import { type CargoSandbox, lockedPackages, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { cargoAvailable } from '../helpers/tools.ts';

/** A dependency as the index lists it (the test helpers' packer knows no renames or targets). */
interface WorldDep {
  name: string;
  req: string;
  kind?: 'normal' | 'build' | 'dev';
  target?: string;
  optional?: boolean;
  /** The crate depended on when `name` is an alias. */
  package?: string;
}

/** One version of the fake world: its index line's facts, and its files when not the default. */
interface WorldCrate {
  name: string;
  version: string;
  yanked?: boolean;
  deps?: WorldDep[];
  /** Files over the packer's defaults (`Cargo.toml`, `src/lib.rs`, `build.rs`). */
  files?: Record<string, string>;
}

/** fm-app's manifest: a renamed, a target-specific, a build, an optional and a dev dependency. */
const APP_TOML = `[package]
name = "fm-app"
version = "1.0.0"
edition = "2021"

[dependencies]
fm-core = "1"
short = { package = "fm-renamed", version = "0.2" }
fm-opt = { version = "0.1", optional = true }

[target.'cfg(unix)'.dependencies]
fm-unix = "0.1"

[target.'cfg(windows)'.dependencies]
fm-win = "0.1"

[build-dependencies]
fm-build = "0.1"

[dev-dependencies]
fm-devonly = "0.1"
`;

const APP_LIB = `pub fn name() -> &'static str { "fm-app-1.0.0" }
pub fn core() -> &'static str { fm_core::name() }
pub fn renamed() -> &'static str { short::name() }
#[cfg(unix)]
pub fn platform() -> &'static str { fm_unix::name() }
#[cfg(windows)]
pub fn platform() -> &'static str { fm_win::name() }
`;

const APP_BUILD = `fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let _ = fm_build::name();
}
`;

const WORLD: WorldCrate[] = [
  { name: 'fm-core', version: '1.0.0' },
  { name: 'fm-core', version: '1.1.0' },
  // Newer, but yanked: no requirement takes it.
  { name: 'fm-core', version: '1.2.0', yanked: true },
  { name: 'fm-renamed', version: '0.2.0' },
  { name: 'fm-unix', version: '0.1.0' },
  { name: 'fm-win', version: '0.1.0' },
  { name: 'fm-build', version: '0.1.0' },
  { name: 'fm-opt', version: '0.1.0' },
  { name: 'fm-devonly', version: '0.1.0' },
  { name: 'fm-unrelated', version: '1.0.0' },
  {
    name: 'fm-app',
    version: '1.0.0',
    deps: [
      { name: 'fm-core', req: '1' },
      { name: 'short', package: 'fm-renamed', req: '0.2' },
      { name: 'fm-opt', req: '0.1', optional: true },
      { name: 'fm-unix', req: '0.1', target: 'cfg(unix)' },
      { name: 'fm-win', req: '0.1', target: 'cfg(windows)' },
      { name: 'fm-build', req: '0.1', kind: 'build' },
      { name: 'fm-devonly', req: '0.1', kind: 'dev' },
    ],
    files: { 'Cargo.toml': APP_TOML, 'src/lib.rs': APP_LIB, 'build.rs': APP_BUILD },
  },
  { name: 'fm-lib', version: '0.2.0', deps: [{ name: 'fm-core', req: '1' }] },
  { name: 'fm-lib', version: '0.3.0', deps: [{ name: 'fm-core', req: '1.1' }] },
  // Outside the root's requirement.
  { name: 'fm-lib', version: '0.4.0', deps: [{ name: 'fm-unrelated', req: '1' }] },
];

/** The two roots: a bare name, and a name with a requirement. */
const FILTER = '# the roots of the test world\nfm-app\nfm-lib@0.3\n';

/** What the mirror must hold, and nothing else of the world. */
const EXPECTED_HELD = [
  'fm-app@1.0.0',
  'fm-build@0.1.0',
  'fm-core@1.1.0',
  'fm-lib@0.3.0',
  'fm-opt@0.1.0',
  'fm-renamed@0.2.0',
  'fm-unix@0.1.0',
  'fm-win@0.1.0',
];

const MAIN_RS = `fn main() {
    println!("{} {} {} {} {}", fm_app::name(), fm_app::core(), fm_app::renamed(), fm_app::platform(), fm_lib::dep_fm_core());
}
`;

/** Publishes the world; every index file is written here, with renames and targets. */
class World {
  readonly upstream: FakeUpstream;
  readonly #lines = new Map<string, string[]>();

  constructor(upstream: FakeUpstream) {
    this.upstream = upstream;
  }

  async publish(spec: WorldCrate): Promise<void> {
    const packed = (spec.deps ?? [])
      .filter((dep) => dep.package === undefined && dep.target === undefined && !dep.optional)
      .map((dep) => ({ name: dep.name, req: dep.req, kind: dep.kind ?? 'normal' }));
    const published = await this.upstream.addCrate({
      name: spec.name,
      version: spec.version,
      ...(spec.yanked && { yanked: true }),
      ...(spec.files ? { files: spec.files } : { deps: packed }),
    });
    const lines = this.#lines.get(published.indexPath) ?? [];
    lines.push(indexLine(spec, published.checksum));
    this.#lines.set(published.indexPath, lines);
    this.upstream.setRawIndexFile(published.indexPath, `${lines.join('\n')}\n`);
  }
}

/** An index line as crates.io writes it, renamed deps with `package`. */
function indexLine(spec: WorldCrate, cksum: string): string {
  const deps = [...(spec.deps ?? [])]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((dep) => ({
      name: dep.name,
      req: /^\d/.test(dep.req) ? `^${dep.req}` : dep.req,
      features: [],
      optional: dep.optional ?? false,
      default_features: true,
      target: dep.target ?? null,
      kind: dep.kind ?? 'normal',
      registry: null,
      ...(dep.package !== undefined && { package: dep.package }),
    }));
  return JSON.stringify({
    name: spec.name,
    vers: spec.version,
    deps,
    cksum,
    features: {},
    yanked: spec.yanked ?? false,
    links: null,
    v: 1,
  });
}

interface Setup {
  world: World;
  dir: string;
  filter: string;
}

async function setup(t: TestContext, filterText = FILTER): Promise<Setup> {
  const upstream = await startFakeUpstream();
  t.after(() => upstream.close());
  const world = new World(upstream);
  for (const spec of WORLD) await world.publish(spec);
  const dir = await makeTempDir('filtered-mirror');
  t.after(() => removeTempDir(dir));
  const filter = join(dir, 'mirror.txt');
  await writeFile(filter, filterText);
  return { world, dir, filter };
}

/** A proxy with `-a --mirror-filter` and no git mirror, its first pass finished. */
async function startMirror(
  t: TestContext,
  { world, dir, filter }: Setup,
  settings: Parameters<typeof startProxy>[0] = {},
): Promise<RunningProxy> {
  const proxy = await startProxy({
    upstream: world.upstream,
    storageDir: join(dir, 'store'),
    ...settings,
    settings: { all: true, mirrorFilters: [filter], ...settings.settings },
  });
  t.after(() => proxy.close());
  await filteredMirror(proxy).idle();
  return proxy;
}

function filteredMirror(proxy: RunningProxy) {
  const mirror = proxy.instance.filteredMirror;
  assert.ok(mirror, 'the filtered mirror runs');
  return mirror;
}

/** Every version of the world the catalogue holds, as `name@version`. */
function held(proxy: RunningProxy): string[] {
  const names = [...new Set(WORLD.map((spec) => spec.name))];
  return names
    .flatMap((name) => proxy.instance.catalogue.heldVersions(name).map((v) => `${name}@${v}`))
    .sort();
}

/** The newest filtered mirror job, with its report, as `/api/v1/jobs` shows it. */
async function lastJobReport(proxy: RunningProxy): Promise<JobSnapshot> {
  const { jobs } = JSON.parse((await httpGet(`${proxy.url}/api/v1/jobs`)).body.toString()) as {
    jobs: JobSnapshot[];
  };
  // Newest first.
  const job = jobs.find((candidate) => candidate.description.startsWith('filtered mirror'));
  assert.ok(job, `a filtered mirror job in ${JSON.stringify(jobs)}`);
  const detail = await httpGet(`${proxy.url}/api/v1/jobs/${job.id}`);
  return JSON.parse(detail.body.toString()) as JobSnapshot;
}

function entry(job: JobSnapshot, name: string, version: string): PackageReport {
  const found = job.report?.find((line) => line.name === name && line.version === version);
  assert.ok(found, `${name} ${version} in ${JSON.stringify(job.report)}`);
  return found;
}

describe('filtered mirror (-a --mirror-filter)', () => {
  test('mirrors two roots and their closure only; then cargo builds from it offline, upstream gone', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const world = await setup(t);
    const first = await startMirror(t, world);

    assert.deepEqual(held(first), EXPECTED_HELD);
    const job = await lastJobReport(first);
    assert.equal(job.state, 'done');
    assert.deepEqual(
      { fetched: job.counts.fetched, failed: job.counts.failed, skipped: job.counts.skipped },
      { fetched: EXPECTED_HELD.length, failed: 0, skipped: 0 },
    );
    const at = (line: number) => `${world.filter}:${line}`;
    assert.equal(entry(job, 'fm-app', '1.0.0').reason, `root fm-app (${at(2)})`);
    assert.equal(entry(job, 'fm-lib', '0.3.0').reason, `root fm-lib@0.3 (${at(3)})`);
    assert.equal(
      entry(job, 'fm-renamed', '0.2.0').reason,
      `root fm-app (${at(2)}) via fm-app 1.0.0`,
    );
    assert.equal(entry(job, 'fm-win', '0.1.0').reason, `root fm-app (${at(2)}) via fm-app 1.0.0`);
    assert.equal(entry(job, 'fm-core', '1.1.0').status, 'fetched');
    const downloads = world.world.upstream.requests.map((request) => request.path);
    for (const unwanted of ['fm-devonly', 'fm-unrelated', 'fm-core/1.2.0', 'fm-core/1.0.0']) {
      assert.ok(
        !downloads.some((path) => path.startsWith('/dl/') && path.includes(`${unwanted}/`)),
        `${unwanted} was not downloaded`,
      );
    }
    assert.ok(!downloads.includes('/index/sh/or/short'), 'the alias is never looked up');

    await first.close();
    await world.world.upstream.close();

    // The far side: the same storage, --offline, and no upstream at all.
    const offline = await startProxy({
      storageDir: join(world.dir, 'store'),
      settings: { offline: true },
    });
    t.after(() => offline.close());
    const box: CargoSandbox = await makeCargoSandbox({
      registry: offline.sparseRegistry,
      deps: { 'fm-app': '1', 'fm-lib': '0.3' },
      mainRs: MAIN_RS,
    });
    t.after(() => box.remove());
    await box.cargo(['generate-lockfile']);
    await box.cargo(['fetch']);
    await box.cargo(['build', '--offline']);
    const run = await box.cargo(['run', '--offline', '--quiet']);
    assert.equal(
      run.stdout.trim(),
      'fm-app-1.0.0 fm-core-1.1.0 fm-renamed-0.2.0 fm-unix-0.1.0 fm-core-1.1.0',
    );
    const locked = (await lockedPackages(box)).map((pkg) => `${pkg.name}@${pkg.version}`).sort();
    assert.deepEqual(
      locked,
      EXPECTED_HELD.filter((id) => id !== 'fm-opt@0.1.0'),
      'every package the lock names is one the mirror holds (the optional one is not enabled)',
    );
  });

  test('the next pass mirrors a new release of a followed crate', async (t) => {
    const world = await setup(t);
    const proxy = await startMirror(t, world);
    assert.ok(held(proxy).includes('fm-core@1.1.0'));

    await world.world.publish({ name: 'fm-core', version: '1.3.0' });
    await world.world.publish({ name: 'fm-unrelated', version: '1.1.0' });
    filteredMirror(proxy).requestPass();
    await filteredMirror(proxy).idle();

    assert.deepEqual(held(proxy), [...EXPECTED_HELD, 'fm-core@1.3.0'].sort());
    const job = await lastJobReport(proxy);
    assert.equal(job.counts.fetched, 1, 'only the new release is fetched');
    // fm-core 1.1.0 stays held, but both requirements on fm-core now take 1.3.0.
    assert.equal(job.counts.cached, EXPECTED_HELD.length - 1);
    assert.equal(job.counts.total, EXPECTED_HELD.length);
    const added = entry(job, 'fm-core', '1.3.0');
    assert.equal(added.status, 'fetched');
    assert.equal(added.reason, `root fm-app (${world.filter}:2) via fm-app 1.0.0`);
  });

  test('with a git mirror, a git refresh brings a pass that takes what it added', async (t) => {
    const world = await setup(t);
    const bare = await world.world.upstream.enableGit(join(world.dir, 'upstream-git'));
    const proxy = await startMirror(t, world, { gitUrl: bare });
    assert.deepEqual(held(proxy), EXPECTED_HELD);
    const git = proxy.deps.git;
    assert.ok(git, 'the git mirror runs');

    await world.world.publish({ name: 'fm-renamed', version: '0.2.1' });
    assert.equal(await git.refresh(), true);
    await filteredMirror(proxy).idle();

    assert.ok(held(proxy).includes('fm-renamed@0.2.1'), held(proxy).join(', '));
    assert.equal(proxy.instance.fullMirror, undefined, 'no full mirror of the git index');
  });

  test('the supply-chain policy: a denied version is skipped and reported, the next older one held', async (t) => {
    const world = await setup(t);
    const deny = join(world.dir, 'deny.txt');
    await writeFile(deny, 'fm-core@=1.1.0\n');
    const proxy = await startMirror(t, world, { settings: { policy: { denyFile: deny } } });

    assert.deepEqual(
      held(proxy),
      EXPECTED_HELD.map((id) => (id === 'fm-core@1.1.0' ? 'fm-core@1.0.0' : id)).sort(),
    );
    const job = await lastJobReport(proxy);
    const skipped = entry(job, 'fm-core', '1.1.0');
    assert.equal(skipped.status, 'skipped');
    assert.match(
      skipped.reason ?? '',
      /^denied by the supply-chain policy \("fm-core@=1\.1\.0"\); root fm-app/,
    );
    // fm-lib 0.3 needs fm-core ^1.1, which only the denied version meets: reported, not a failure.
    assert.equal(job.counts.failed, 0, JSON.stringify(job.report));
  });

  test('what the filter asks for that does not exist is reported as failed, the rest mirrored', async (t) => {
    const world = await setup(t, `${FILTER}fm-missing\nfm-core@^7\n`);
    const proxy = await startMirror(t, world);
    assert.deepEqual(held(proxy), EXPECTED_HELD);
    const job = await lastJobReport(proxy);
    assert.equal(job.counts.failed, 2);
    assert.match(entry(job, 'fm-missing', '(newest)').reason ?? '', /no such crate in the index/);
    assert.match(entry(job, 'fm-core', '^7').reason ?? '', /no version matches/);
  });
});
