import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { buildConfig } from '../../src/config.ts';
import { startInstance } from '../../src/instance.ts';
import type { JobSnapshot, PackageReport } from '../../src/jobs/job.ts';
import { createLogger } from '../../src/logger.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { type CargoSandbox, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { runCliCommand } from '../helpers/cli-process.ts';
import { gitEnv } from '../helpers/fake-git-index.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { cargoAvailable } from '../helpers/tools.ts';
import { waitFor } from '../helpers/wait-for.ts';

const execFileAsync = promisify(execFile);

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'src', 'cli', 'main.ts');
/** tsx's loader by URL, so the CLI starts the way cli.test.ts starts it. */
const TSX = import.meta.resolve('tsx');

/**
 * Two versions of pf-a end up in the lock (pf-b wants 0.1, pf-c wants 0.2), so dependency
 * strings must name versions; pf-plus has build metadata; pf-unused and pf-yanked (a lock may
 * pin a yanked version) are only for lists.
 */
const CRATES: FakeCrateSpec[] = [
  { name: 'pf-a', version: '0.1.0' },
  { name: 'pf-a', version: '0.1.1' },
  { name: 'pf-a', version: '0.2.0' },
  { name: 'pf-b', version: '0.2.0', deps: [{ name: 'pf-a', req: '0.1' }] },
  { name: 'pf-c', version: '1.0.0', deps: [{ name: 'pf-a', req: '0.2' }] },
  { name: 'pf-plus', version: '1.0.0+build.5' },
  { name: 'pf-unused', version: '0.3.0' },
  { name: 'pf-unused', version: '0.4.0' },
  { name: 'pf-yanked', version: '0.1.0', yanked: true },
];
/** The registry packages cargo locks for {@link projectManifest}. */
const LOCKED = ['pf-a 0.1.1', 'pf-a 0.2.0', 'pf-b 0.2.0', 'pf-c 1.0.0', 'pf-plus 1.0.0+build.5'];
/** How a replaced crates.io is recorded in Cargo.lock (cargo-protocol.md §4). */
const CRATES_IO_SOURCE = 'registry+https://github.com/rust-lang/crates.io-index';
const GIT_CONFIG = [
  '-c',
  'user.name=t',
  '-c',
  'user.email=t@t.invalid',
  '-c',
  'commit.gpgsign=false',
];

/** A `[[package]]` of a Cargo.lock. */
interface LockPackage {
  name: string;
  version: string;
  source?: string;
  checksum?: string;
  dependencies?: string[];
}

type LockFormat = 1 | 2 | 3 | 4;

interface World {
  upstream: FakeUpstream;
  dir: string;
  /** `file://` URL of a git repository holding the pf-gitdep crate. */
  gitDepUrl: string;
  /** The packages of the lock real cargo wrote for the project against the upstream. */
  packages: LockPackage[];
}

/** A project with three registry deps, a path dep and a git dep. */
function projectManifest(gitDepUrl: string): string {
  return [
    '[package]',
    'name = "sandbox-app"',
    'version = "0.1.0"',
    'edition = "2021"',
    '',
    '[dependencies]',
    'pf-b = "0.2"',
    'pf-c = "1"',
    'pf-plus = "1.0.0"',
    'local-util = { path = "local-util" }',
    `pf-gitdep = { git = ${JSON.stringify(gitDepUrl)} }`,
    '',
  ].join('\n');
}

/** A cargo sandbox whose project is {@link projectManifest}, using `registry`. */
async function makeProject(
  t: TestContext,
  world: World,
  registry: string,
  lock?: string,
): Promise<CargoSandbox> {
  const box = await makeCargoSandbox({ registry, deps: {} });
  t.after(() => box.remove());
  await writeFile(join(box.projectDir, 'Cargo.toml'), projectManifest(world.gitDepUrl));
  const util = join(box.projectDir, 'local-util');
  await mkdir(join(util, 'src'), { recursive: true });
  await writeFile(
    join(util, 'Cargo.toml'),
    '[package]\nname = "local-util"\nversion = "0.1.0"\nedition = "2021"\n',
  );
  await writeFile(join(util, 'src', 'lib.rs'), '');
  if (lock !== undefined) await writeFile(join(box.projectDir, 'Cargo.lock'), lock);
  return box;
}

/** A one-commit git repository with a crate in it, for a git dependency. */
async function makeGitDep(dir: string): Promise<{ url: string; commit: string }> {
  const repo = join(dir, 'gitdep');
  await mkdir(join(repo, 'src'), { recursive: true });
  await writeFile(
    join(repo, 'Cargo.toml'),
    '[package]\nname = "pf-gitdep"\nversion = "0.5.0"\nedition = "2021"\n',
  );
  await writeFile(join(repo, 'src', 'lib.rs'), '');
  const env = gitEnv(join(dir, 'home'));
  const git = (...args: string[]) => execFileAsync('git', [...GIT_CONFIG, ...args], { env });
  await git('init', '-q', repo);
  await git('-C', repo, 'add', '-A');
  await git('-C', repo, 'commit', '-q', '-m', 'gitdep');
  const { stdout } = await git('-C', repo, 'rev-parse', 'HEAD');
  return { url: `file://${repo}`, commit: stdout.trim() };
}

/** The packages cargo locks for {@link projectManifest}, in cargo's order. */
function projectPackages(
  upstream: FakeUpstream,
  gitDep: { url: string; commit: string },
): LockPackage[] {
  return [
    { name: 'local-util', version: '0.1.0' },
    registryPackage(upstream, 'pf-a', '0.1.1'),
    registryPackage(upstream, 'pf-a', '0.2.0'),
    { ...registryPackage(upstream, 'pf-b', '0.2.0'), dependencies: ['pf-a 0.1.1'] },
    { ...registryPackage(upstream, 'pf-c', '1.0.0'), dependencies: ['pf-a 0.2.0'] },
    { name: 'pf-gitdep', version: '0.5.0', source: `git+${gitDep.url}#${gitDep.commit}` },
    registryPackage(upstream, 'pf-plus', '1.0.0+build.5'),
    {
      name: 'sandbox-app',
      version: '0.1.0',
      dependencies: ['local-util', 'pf-b', 'pf-c', 'pf-gitdep', 'pf-plus'],
    },
  ];
}

/** Writes `packages` as a Cargo.lock of `format` (cargo-protocol.md §5). */
function renderLock(packages: LockPackage[], format: LockFormat): string {
  const header = [
    '# This file is automatically @generated by Cargo.',
    '# It is not intended for manual editing.',
  ];
  if (format >= 3) header.push(`version = ${format}`);
  const blocks = packages.map((pkg) => {
    const lines = ['[[package]]', `name = ${q(pkg.name)}`, `version = ${q(pkg.version)}`];
    if (pkg.source !== undefined) lines.push(`source = ${q(pkg.source)}`);
    if (pkg.checksum !== undefined && format >= 2) lines.push(`checksum = ${q(pkg.checksum)}`);
    const deps = (pkg.dependencies ?? []).map((dep) =>
      format === 1 ? fullPackageId(dep, packages) : dep,
    );
    if (deps.length > 0) lines.push('dependencies = [', ...deps.map((d) => ` ${q(d)},`), ']');
    return lines.join('\n');
  });
  let text = `${header.join('\n')}\n\n${blocks.join('\n\n')}\n`;
  if (format === 1) {
    const sums = packages
      .filter((pkg) => pkg.checksum !== undefined)
      .map(
        (pkg) => `${q(`checksum ${fullPackageId(pkg.name, [pkg])}`)} = ${q(pkg.checksum ?? '')}`,
      );
    text += `\n[metadata]\n${sums.join('\n')}\n`;
  }
  return text;
}

/** V1's `name version (source)`, the source without its `#commit`; path packages have none. */
function fullPackageId(ref: string, packages: LockPackage[]): string {
  const [name, version] = ref.split(' ');
  const pkg = packages.find(
    (p) => p.name === name && (version === undefined || p.version === version),
  );
  assert.ok(pkg, `dependency ${ref} is in the lock`);
  const source = pkg.source?.split('#')[0];
  return source === undefined
    ? `${pkg.name} ${pkg.version}`
    : `${pkg.name} ${pkg.version} (${source})`;
}

/** The registry pins of a lock: `name version checksum`, sorted. */
function pins(lock: string): string[] {
  const { package: packages } = parse(lock) as unknown as { package: LockPackage[] };
  return packages
    .filter((pkg) => pkg.source === CRATES_IO_SOURCE)
    .map((pkg) => `${pkg.name} ${pkg.version} ${pkg.checksum}`)
    .sort();
}

function splitLabel(label: string): [string, string] {
  const [name = '', version = ''] = label.split(' ');
  return [name, version];
}

function q(value: string): string {
  return JSON.stringify(value);
}

/** Waits until the proxy's (only) prefetch job is done and returns it with its report. */
async function prefetchJob(proxy: RunningProxy): Promise<JobSnapshot> {
  const { jobs } = proxy.deps;
  await waitFor(
    () => jobs.list().some((job) => job.kind === 'prefetch') && jobs.running().length === 0,
    30_000,
    'the prefetch job',
  );
  const found = jobs.list().filter((job) => job.kind === 'prefetch');
  assert.equal(found.length, 1, 'one prefetch job');
  const job = jobs.get(found[0]?.id ?? '');
  assert.ok(job);
  return job.snapshot(true);
}

/** `name version` of the report lines with `status`, sorted. */
function namesWith(report: PackageReport[] | undefined, status: string): string[] {
  return (report ?? [])
    .filter((entry) => entry.status === status)
    .map((entry) => `${entry.name} ${entry.version}`)
    .sort();
}

function entryOf(job: JobSnapshot, name: string, version: string): PackageReport {
  const entry = job.report?.find((e) => e.name === name && e.version === version);
  assert.ok(entry, `${name} ${version} is in the report`);
  return entry;
}

/** True when the storage holds the crate with upstream's bytes. */
async function storedIntact(storageDir: string, upstream: FakeUpstream, label: string) {
  const [name = '', version = ''] = label.split(' ');
  const path = join(storageDir, ...crateKey({ name, version }).split('/'));
  const bytes = await readFile(path).catch(() => undefined);
  if (bytes === undefined) return false;
  return (
    createHash('sha256').update(bytes).digest('hex') === upstream.crate(name, version).checksum
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeFixture(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  return path;
}

/** A storage dir for the test, removed after it. */
async function storage(t: TestContext, prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  t.after(() => removeTempDir(dir));
  return dir;
}

/** A crates.io `[[package]]` for a version of the upstream, with its checksum. */
function registryPackage(upstream: FakeUpstream, name: string, version: string): LockPackage {
  const { checksum } = upstream.crate(name, version);
  return { name, version, source: CRATES_IO_SOURCE, checksum };
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end; never throws for a non-zero exit. */
async function runCli(args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ['--import', TSX, MAIN, ...args],
      {
        cwd: REPO,
        env: { ...process.env, NO_COLOR: '1' },
        timeout: 60_000,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const {
      code,
      stdout = '',
      stderr = '',
    } = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof code === 'number' ? code : null, stdout, stderr };
  }
}

interface Answer<T> {
  status: number;
  location: string | null;
  body: T;
}

async function post(
  proxy: RunningProxy,
  text: string,
  contentType = 'text/plain',
): Promise<Answer<{ id: string; url: string; total: number }>> {
  const response = await fetch(`${proxy.url}/api/v1/prefetch`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: text,
  });
  return {
    status: response.status,
    location: response.headers.get('location'),
    body: (await response.json()) as { id: string; url: string; total: number },
  };
}

async function getJson<T = unknown>(url: string): Promise<Answer<T>> {
  const response = await fetch(url);
  return {
    status: response.status,
    location: response.headers.get('location'),
    body: (await response.json()) as T,
  };
}

/** Polls `GET /api/v1/jobs/{id}` until the job is no longer running. */
async function pollJob(proxy: RunningProxy, id: string): Promise<JobSnapshot> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const answer = await getJson<JobSnapshot>(`${proxy.url}/api/v1/jobs/${id}`);
    assert.equal(answer.status, 200);
    if (answer.body.state !== 'running') return answer.body;
    if (Date.now() > deadline) assert.fail(`job ${id} still running`);
    await delay(25);
  }
}

describe('prefetch', () => {
  let world: World;

  before(async () => {
    const upstream = await startFakeUpstream({ crates: CRATES });
    const dir = await makeTempDir('prefetch-world');
    const gitDep = await makeGitDep(dir);
    world = { upstream, dir, gitDepUrl: gitDep.url, packages: projectPackages(upstream, gitDep) };
  });

  after(async () => {
    await world.upstream.close();
    await removeTempDir(world.dir);
  });

  beforeEach(async () => {
    await world.upstream.restart();
    world.upstream.resetLog();
  });

  test('real cargo locks the fixture project to the packages the fixtures are written from', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const box = await makeProject(t, world, `sparse+${world.upstream.indexUrl}`);
    await box.cargo(['generate-lockfile']);
    const text = await readFile(join(box.projectDir, 'Cargo.lock'), 'utf8');
    assert.equal(text, renderLock(world.packages, 4));
  });

  for (const format of [1, 2, 3, 4] as const) {
    test(`a version ${format} Cargo.lock is prefetched, and cargo fetch then works with upstream stopped`, async (t) => {
      const { upstream, packages } = world;
      const lock = renderLock(packages, format);
      // Named without "Cargo.lock": the format is told by content.
      const file = await writeFixture(world.dir, `fixtures/v${format}.lock`, lock);
      const storageDir = await storage(t, `prefetch-v${format}`);

      upstream.resetLog();
      const first = await startProxy({ upstream, storageDir, settings: { prefetch: [file] } });
      t.after(() => first.close());
      const job = await prefetchJob(first);
      assert.equal(job.state, 'done');
      assert.deepEqual(
        { ...job.counts, bytes: 0 },
        { total: 8, fetched: 5, cached: 0, failed: 0, skipped: 3, bytes: 0 },
        JSON.stringify(job.report),
      );
      const sizes = LOCKED.map((label) => upstream.crate(...splitLabel(label)).bytes.length);
      assert.equal(
        job.counts.bytes,
        sizes.reduce((a, b) => a + b),
      );
      assert.deepEqual(namesWith(job.report, 'fetched'), LOCKED);
      assert.deepEqual(namesWith(job.report, 'skipped'), [
        'local-util 0.1.0',
        'pf-gitdep 0.5.0',
        'sandbox-app 0.1.0',
      ]);
      assert.equal(entryOf(job, 'pf-gitdep', '0.5.0').reason, 'git package');
      assert.equal(entryOf(job, 'local-util', '0.1.0').reason, 'path package');
      for (const label of LOCKED) assert.ok(await storedIntact(storageDir, upstream, label), label);
      await first.close();

      // A restart on the same storage finds everything cached and downloads nothing.
      upstream.resetLog();
      const proxy = await startProxy({ upstream, storageDir, settings: { prefetch: [file] } });
      t.after(() => proxy.close());
      const again = await prefetchJob(proxy);
      assert.deepEqual(
        again.counts,
        { total: 8, fetched: 0, cached: 5, failed: 0, skipped: 3, bytes: 0 },
        JSON.stringify(again.report),
      );
      assert.equal(upstream.count('/dl/'), 0);

      if (!(await cargoAvailable(t))) return;
      await upstream.stop();
      const box = await makeProject(t, world, proxy.sparseRegistry, lock);
      // cargo rewrites a V1 lock in a current format (same pins), so only later ones are --locked.
      await box.cargo(['fetch', ...(format === 1 ? [] : ['--locked'])]);
      const written = await readFile(join(box.projectDir, 'Cargo.lock'), 'utf8');
      if (format === 1) assert.deepEqual(pins(written), pins(renderLock(packages, 4)));
      else assert.equal(written, lock);
      for (const label of LOCKED) {
        const [name, version] = label.split(' ');
        const cached = join(box.cargoHome, 'registry', 'cache');
        assert.ok(await hasFileNamed(cached, `${name}-${version}.crate`), `cargo cached ${label}`);
      }
    });
  }

  test('a name=version list allows spaces, comments and blank lines; a directory is searched for Cargo.lock files outside target/ and .git/', async (t) => {
    const { upstream } = world;
    const dir = await storage(t, 'prefetch-inputs');
    const list = await writeFixture(
      dir,
      'warm.txt',
      [
        '# crates the CI needs',
        '',
        'pf-unused = 0.3.0',
        '   pf-unused=0.4.0   # trailing comment',
        '',
        'pf-a =0.1.0',
        'pf-unused = 0.3.0',
        'pf-yanked=0.1.0',
        '',
      ].join('\n'),
    );
    const project = join(dir, 'project');
    const top = await writeFixture(project, 'Cargo.lock', renderLock(world.packages, 4));
    const member = await writeFixture(
      project,
      'crates/member/Cargo.lock',
      renderLock(
        [
          { name: 'member', version: '0.1.0', dependencies: ['pf-c', 'pf-unused'] },
          registryPackage(upstream, 'pf-c', '1.0.0'),
          registryPackage(upstream, 'pf-unused', '0.4.0'),
        ],
        3,
      ),
    );
    const decoy = (name: string) =>
      renderLock([{ name, version: '6.6.6', source: CRATES_IO_SOURCE }], 4);
    await writeFixture(project, 'target/debug/Cargo.lock', decoy('pf-decoy-target'));
    await writeFixture(project, 'crates/member/target/Cargo.lock', decoy('pf-decoy-nested'));
    await writeFixture(project, '.git/Cargo.lock', decoy('pf-decoy-git'));
    await writeFixture(project, 'Cargo.lock.orig', decoy('pf-decoy-name'));

    const proxy = await startProxy({ upstream, settings: { prefetch: [list, project] } });
    t.after(() => proxy.close());
    const job = await prefetchJob(proxy);
    assert.equal(job.description, `prefetch of ${[list, top, member].join(', ')}`);
    assert.doesNotMatch(JSON.stringify(job), /decoy/);
    assert.equal(
      upstream.count((request) => request.path.includes('decoy')),
      0,
    );
    assert.deepEqual(
      namesWith(job.report, 'fetched'),
      ['pf-a 0.1.0', ...LOCKED, 'pf-unused 0.3.0', 'pf-unused 0.4.0', 'pf-yanked 0.1.0'].sort(),
    );
    assert.deepEqual(namesWith(job.report, 'skipped'), [
      'local-util 0.1.0',
      'member 0.1.0',
      'pf-gitdep 0.5.0',
      'sandbox-app 0.1.0',
    ]);
    assert.equal(job.counts.failed, 0, JSON.stringify(job.report));
  });

  for (const format of [1, 4] as const) {
    test(`a version ${format} lock file checksum that disagrees with the upstream index fails that crate, which is not stored`, async (t) => {
      const { upstream } = world;
      const bad = upstream.crate('pf-a', '0.2.0').checksum;
      const packages = world.packages.map((pkg) =>
        pkg.name === 'pf-a' && pkg.version === '0.1.1' ? { ...pkg, checksum: bad } : pkg,
      );
      const dir = await storage(t, 'prefetch-mismatch');
      const file = await writeFixture(dir, 'tampered.lock', renderLock(packages, format));
      const proxy = await startProxy({ upstream, settings: { prefetch: [file] } });
      t.after(() => proxy.close());
      const job = await prefetchJob(proxy);
      assert.equal(job.state, 'done');
      assert.equal(job.counts.failed, 1, JSON.stringify(job.report));
      const failed = entryOf(job, 'pf-a', '0.1.1');
      assert.equal(failed.status, 'failed');
      assert.match(failed.reason ?? '', /checksum mismatch/);
      assert.ok(failed.reason?.includes(bad), failed.reason);
      assert.equal(job.report?.[0], failed, 'failures come first');
      assert.equal(await storedIntact(proxy.storageDir, upstream, 'pf-a 0.1.1'), false);
      assert.equal(
        await exists(join(proxy.storageDir, crateKey({ name: 'pf-a', version: '0.1.1' }))),
        false,
      );
      assert.equal(upstream.count('/dl/pf-a/0.1.1/'), 0, 'never downloaded');
      assert.deepEqual(
        namesWith(job.report, 'fetched'),
        LOCKED.filter((l) => l !== 'pf-a 0.1.1'),
      );
    });
  }

  test('a checksum mismatch in one lock file is reported even when another lock file has the right checksum', async (t) => {
    const { upstream } = world;
    const good = registryPackage(upstream, 'pf-c', '1.0.0');
    const bad = { ...good, checksum: upstream.crate('pf-a', '0.2.0').checksum };
    const dir = await storage(t, 'prefetch-conflict');
    // Either order: the tampered file first, then the honest one, and the other way round.
    const files = [
      await writeFixture(dir, 'a/Cargo.lock', renderLock([bad], 4)),
      await writeFixture(dir, 'b/Cargo.lock', renderLock([good], 4)),
      await writeFixture(dir, 'c/Cargo.lock', renderLock([bad], 4)),
    ];
    const proxy = await startProxy({ upstream, settings: { prefetch: [dir] } });
    t.after(() => proxy.close());
    const job = await prefetchJob(proxy);
    assert.equal(job.description, `prefetch of ${files.join(', ')}`);
    const lines = (job.report ?? []).map((e) => `${e.name} ${e.version} ${e.status}`);
    assert.deepEqual(lines, ['pf-c 1.0.0 failed', 'pf-c 1.0.0 fetched']);
    assert.match(job.report?.[0]?.reason ?? '', /checksum mismatch/);
    assert.ok(job.report?.[0]?.reason?.includes(bad.checksum));
  });

  test('with --offline, prefetch reports what is not cached and never contacts upstream', async (t) => {
    const { upstream } = world;
    const dir = await storage(t, 'prefetch-offline');
    const store = join(dir, 'store');
    const warm = await writeFixture(dir, 'warm', 'pf-a=0.1.0\npf-a=0.2.0\n');
    const online = await startProxy({
      upstream,
      storageDir: store,
      settings: { prefetch: [warm] },
    });
    assert.equal((await prefetchJob(online)).counts.fetched, 2);
    await online.close();
    await rm(join(store, ...crateKey({ name: 'pf-a', version: '0.2.0' }).split('/')));
    // Files removed behind the cache's back are forgotten at the next reconcile.
    const reconciled = await runCliCommand(['reconcile', '-i', store]);
    assert.match(reconciled.stdout, /dropped 1/, reconciled.stderr);

    upstream.resetLog();
    const list = await writeFixture(dir, 'list', 'pf-a=0.1.0\npf-a=0.2.0\npf-c=1.0.0\n');
    const proxy = await startProxy({
      upstream,
      storageDir: store,
      settings: { prefetch: [list], offline: true },
    });
    t.after(() => proxy.close());
    const job = await prefetchJob(proxy);
    assert.deepEqual(upstream.requests, [], 'nothing was asked of upstream');
    assert.deepEqual(namesWith(job.report, 'cached'), ['pf-a 0.1.0']);
    assert.deepEqual(namesWith(job.report, 'failed'), ['pf-a 0.2.0', 'pf-c 1.0.0']);
    assert.match(entryOf(job, 'pf-a', '0.2.0').reason ?? '', /offline/);
  });

  test('a missing -f path makes startup fail with a clear error, in-process and on the command line', async (t) => {
    const dir = await storage(t, 'prefetch-missing');
    const missing = join(dir, 'no-such-dir', 'Cargo.lock');
    const store = join(dir, 'store');
    const config = buildConfig({
      port: 0,
      listen: '127.0.0.1',
      storageDir: store,
      sparseUpstream: world.upstream.indexUrl,
      prefetch: [missing],
    });
    const log = createLogger({ level: 'silent', format: 'json' });
    await assert.rejects(startInstance(config, log), (err: Error) => {
      assert.ok(err.message.includes(missing), err.message);
      assert.match(err.message, /ENOENT/);
      return true;
    });
    assert.equal(await exists(store), false, 'nothing was started');

    const flags = ['-i', store, '-s', world.upstream.indexUrl];
    const serve = await runCli([
      '-p',
      '0',
      '--listen',
      '127.0.0.1',
      '--no-git',
      ...flags,
      '-f',
      missing,
    ]);
    const oneShot = await runCli(['prefetch', missing, ...flags]);
    for (const run of [serve, oneShot]) {
      assert.notEqual(run.code, 0);
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0] ?? '', /^cargo-cacher: prefetch path .*no-such-dir.*ENOENT/);
    }
  });

  test('a transient upstream failure is retried and succeeds; a version missing upstream is reported failed', async (t) => {
    const { upstream } = world;
    const dir = await storage(t, 'prefetch-transient');
    const list = await writeFixture(dir, 'list', 'pf-unused=0.3.0\npf-a=0.2.0\npf-a=9.9.9\n');
    const paths = ['/dl/pf-a/0.2.0/download', '/dl/pf-unused/0.3.0/download'] as const;
    // Each download fails once; its retry is held half-sent until the checks below are done.
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    for (const path of paths) upstream.setFault({ kind: 'status', status: 500 }, path, 1);
    t.after(() => {
      gate.open();
      upstream.setFault(undefined, 'crate');
      for (const path of paths) upstream.setFault(undefined, path);
    });
    const proxy = await startProxy({ upstream, settings: { prefetch: [list] } });
    t.after(() => proxy.close());
    await gate.arrived(2);
    // The job runs in the background: the server answers meanwhile.
    assert.equal(proxy.deps.jobs.running().length, 1);
    assert.equal((await fetch(`${proxy.url}/index/pf/-a/pf-a`)).status, 200);
    gate.open();
    const job = await prefetchJob(proxy);
    assert.deepEqual(namesWith(job.report, 'fetched'), ['pf-a 0.2.0', 'pf-unused 0.3.0']);
    assert.deepEqual(namesWith(job.report, 'failed'), ['pf-a 9.9.9']);
    assert.equal(entryOf(job, 'pf-a', '9.9.9').reason, 'not in the upstream index');
    for (const path of ['/dl/pf-a/0.2.0/', '/dl/pf-unused/0.3.0/']) {
      assert.ok(upstream.count(path) >= 2, `${path}: a failed attempt, then a retry`);
    }
    for (const label of ['pf-a 0.2.0', 'pf-unused 0.3.0']) {
      assert.ok(await storedIntact(proxy.storageDir, upstream, label), label);
    }
  });

  test('POST /api/v1/prefetch starts a job whose report names each package as cached, fetched, failed or skipped', async (t) => {
    const { upstream } = world;
    const proxy = await startProxy({ upstream });
    t.after(() => proxy.close());
    // text/plain, as fetch() sends a string; warms pf-unused 0.3.0 for the second request.
    const first = await post(proxy, 'pf-unused = 0.3.0\n');
    assert.equal(first.status, 202);
    assert.equal((await pollJob(proxy, first.body.id)).counts.fetched, 1);

    const lock = renderLock(
      [
        {
          name: 'app',
          version: '0.1.0',
          dependencies: ['dep1', 'pf-a', 'pf-unused 0.3.0', 'pf-unused 0.4.0'],
        },
        {
          name: 'dep1',
          version: '0.5.0',
          source:
            'git+https://github.com/example/dep1?branch=main#4b825dc642cb6eb9a060e54bf8d69288fbee4904',
        },
        { name: 'pf-a', version: '9.9.9', source: CRATES_IO_SOURCE },
        registryPackage(upstream, 'pf-unused', '0.3.0'),
        registryPackage(upstream, 'pf-unused', '0.4.0'),
      ],
      4,
    );
    // What `curl --data-binary @Cargo.lock` sends.
    const second = await post(proxy, lock, 'application/x-www-form-urlencoded');
    assert.equal(second.status, 202);
    assert.equal(second.location, `/api/v1/jobs/${second.body.id}`);
    assert.equal(second.body.url, second.location);
    assert.equal(second.body.total, 5);
    const job = await pollJob(proxy, second.body.id);
    assert.equal(job.state, 'done');
    assert.deepEqual(job.counts, {
      total: 5,
      cached: 1,
      fetched: 1,
      failed: 1,
      skipped: 2,
      bytes: upstream.crate('pf-unused', '0.4.0').bytes.length,
    });
    const lines = (job.report ?? []).map((e) => [e.name, e.version, e.status, e.reason ?? '']);
    assert.deepEqual(lines, [
      ['pf-a', '9.9.9', 'failed', 'not in the upstream index'],
      ['pf-unused', '0.4.0', 'fetched', ''],
      ['app', '0.1.0', 'skipped', 'path package'],
      ['dep1', '0.5.0', 'skipped', 'git package'],
      ['pf-unused', '0.3.0', 'cached', ''],
    ]);

    const list = await getJson<{ jobs: JobSnapshot[] }>(`${proxy.url}/api/v1/jobs`);
    assert.deepEqual(
      list.body.jobs.map((j) => j.id),
      [second.body.id, first.body.id],
      'newest first',
    );
    assert.equal(list.body.jobs[0]?.report, undefined, 'no reports in the list');
  });

  test('POST /api/v1/prefetch with an empty or unreadable body is 400, and an unknown job is 404', async (t) => {
    const proxy = await startProxy({ upstream: world.upstream });
    t.after(() => proxy.close());
    assert.equal((await post(proxy, '')).status, 400);
    assert.equal((await post(proxy, '  \n\n')).status, 400);
    assert.equal((await post(proxy, '', 'application/x-www-form-urlencoded')).status, 400);
    const garbage = await post(proxy, 'this is not a lock file\n');
    assert.equal(garbage.status, 400);
    const badLock = await post(proxy, '[[package]]\nname = "x"\nversion = 1\n');
    assert.equal(badLock.status, 400);
    assert.equal(proxy.deps.jobs.list().length, 0, 'no job was started');
    const unknown = await getJson(`${proxy.url}/api/v1/jobs/00000000-0000-0000-0000-000000000000`);
    assert.equal(unknown.status, 404);
    assert.equal((await getJson(`${proxy.url}/api/v1/jobs/nope`)).status, 404);
  });

  test('the prefetch command fills the storage and exits 0, or exits 1 with a failed: line per failure', async (t) => {
    const { upstream } = world;
    const dir = await storage(t, 'prefetch-cli');
    const store = join(dir, 'store');
    const lock = await writeFixture(dir, 'project/Cargo.lock', renderLock(world.packages, 2));
    const flags = ['-i', store, '-s', upstream.indexUrl];
    const ok = await runCli(['prefetch', lock, ...flags]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /failed:/);
    assert.match(ok.stdout, /prefetch finished: 5 fetched, 0 already cached, 0 failed, 3 skipped/);
    for (const label of LOCKED) assert.ok(await storedIntact(store, upstream, label), label);

    const list = await writeFixture(dir, 'list', 'pf-unused=0.4.0\npf-a = 9.9.9\n');
    const failing = await runCli(['prefetch', list, ...flags]);
    assert.equal(failing.code, 1, failing.stderr);
    const failedLines = failing.stderr.split('\n').filter((line) => line.startsWith('failed:'));
    assert.deepEqual(failedLines, ['failed: pf-a 9.9.9: not in the upstream index']);
    assert.ok(await storedIntact(store, upstream, 'pf-unused 0.4.0'));
  });
});

async function hasFileNamed(dir: string, fileName: string): Promise<boolean> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.some((entry) => entry === fileName || entry.endsWith(`/${fileName}`));
}
