import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildConfig, DEFAULTS } from '../../src/config.ts';
import { readTreeFiles } from '../../src/git/tree-reader.ts';
import { startInstance } from '../../src/instance.ts';
import type { JobSnapshot } from '../../src/jobs/job.ts';
import { createLogger } from '../../src/logger.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { runCliCommand } from '../helpers/cli-process.ts';
import type { FakeCrateSpec, FakeUpstream, PublishedCrate } from '../helpers/fake-upstream.ts';
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

const VERSIONS = ['0.1.0', '0.1.1', '0.2.0', '1.0.0', '1.0.1'];
/**
 * Dev-dependencies cargo never resolves for a registry crate; they make the index lines long
 * (about 1 MB in all), more than the pipes between git and the mirror hold.
 */
const DEV_DEPS = Array.from({ length: 25 }, (_, i) => ({
  name: `dev-only-${i}`,
  req: '1',
  kind: 'dev' as const,
}));

/**
 * 60 crates × 5 versions. Names of one, two and three characters and a mixed-case one cover
 * every index directory shape; each 1.0.x depends on the crate before it, so cargo resolves a
 * chain; two versions are yanked.
 */
function generatedCrates(): FakeCrateSpec[] {
  const names = ['m', 'mx', 'mxy', 'Mixed-Case'];
  for (let i = names.length; i < 60; i++) names.push(`mirror-${String(i).padStart(2, '0')}`);
  const specs: FakeCrateSpec[] = [];
  names.forEach((name, i) => {
    for (const version of VERSIONS) {
      const previous = names[i - 1];
      const deps =
        version.startsWith('1.') && previous !== undefined && i > 4
          ? [{ name: previous, req: '1' }]
          : [];
      const yanked =
        (name === 'mirror-07' && version === '0.1.1') || (name === 'mxy' && version === '1.0.0');
      specs.push({ name, version, deps: [...deps, ...DEV_DEPS], yanked });
    }
  });
  return specs;
}

function mirrorJobs(proxy: RunningProxy): JobSnapshot[] {
  return proxy.deps.jobs.list().filter((job) => job.kind === 'mirror');
}

/** Waits for the git mirror's first pass (and anything queued after it) to finish. */
async function mirrorDone(proxy: RunningProxy, timeoutMs = 60_000): Promise<JobSnapshot[]> {
  const { fullMirror } = proxy.instance;
  assert.ok(fullMirror, 'the proxy mirrors');
  await waitFor(() => mirrorJobs(proxy).length > 0, timeoutMs, 'the first mirror pass');
  await fullMirror.idle();
  return mirrorJobs(proxy).map((job) => proxy.deps.jobs.get(job.id)?.snapshot(true) ?? job);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every file below `<storageDir>/crates`, relative to the storage root. */
async function storedFiles(storageDir: string): Promise<string[]> {
  const base = join(storageDir, 'crates');
  const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(storageDir, join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * Checks that every file below `crates/` is a whole, verified crate of `upstream` and returns
 * their labels (`name@version`).
 */
async function verifiedStore(storageDir: string, upstream: FakeUpstream): Promise<Set<string>> {
  const byKey = new Map(upstream.crates().map((c) => [crateKey(c), c]));
  const labels = new Set<string>();
  for (const file of await storedFiles(storageDir)) {
    const crate = byKey.get(file.split('\\').join('/'));
    assert.ok(crate, `${file} is a crate of the upstream`);
    const bytes = await readFile(join(storageDir, file));
    assert.equal(sha256(bytes), crate.checksum, `${file} is whole and verified`);
    labels.add(`${crate.name}@${crate.version}`);
  }
  return labels;
}

function labelsOf(crates: PublishedCrate[]): string[] {
  return crates.map((c) => `${c.name}@${c.version}`).sort();
}

/** `/dl/` requests per `name@version`. */
function downloadCounts(upstream: FakeUpstream): Map<string, number> {
  const counts = new Map<string, number>();
  for (const request of upstream.requests) {
    const match = /^\/dl\/([^/]+)\/([^/]+)\/download$/.exec(request.path);
    if (!match) continue;
    const label = `${decodeURIComponent(match[1] ?? '')}@${decodeURIComponent(match[2] ?? '')}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return counts;
}

/** The running CLI: its child, its URL once it listens, and its exit. */
interface Cli {
  child: ChildProcess;
  url: Promise<string>;
  /** Log messages so far. */
  messages: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startCli(t: TestContext, args: string[]): Cli {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stderr,
  }));
  const messages: string[] = [];
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const record = JSON.parse(line) as { listen?: string; msg?: string };
        messages.push(record.msg ?? '');
        if (record.listen !== undefined) resolve(`http://${record.listen}`);
      } catch {
        // not a log line
      }
    });
    exit.then((result) => reject(new Error(`the CLI exited before listening: ${result.stderr}`)));
  });
  url.catch(() => undefined);
  return { child, url, messages, exit };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  return (await response.json()) as T;
}

/** Polls the CLI's job API until a mirror job is done and none runs. */
async function cliMirrorDone(url: string): Promise<JobSnapshot> {
  let done: JobSnapshot | undefined;
  await waitFor(
    async () => {
      const { jobs } = await getJson<{ jobs: JobSnapshot[] }>(`${url}/api/v1/jobs`);
      const mirror = jobs.filter((job) => job.kind === 'mirror');
      done = mirror.find((job) => job.state !== 'running');
      return done !== undefined && mirror.every((job) => job.state !== 'running');
    },
    60_000,
    'the mirror job of the CLI',
  );
  return getJson<JobSnapshot>(`${url}/api/v1/jobs/${done?.id}`);
}

/** A small upstream with a git index, for tests that change it. */
async function smallUpstream(
  t: TestContext,
  crates: FakeCrateSpec[],
): Promise<{ upstream: FakeUpstream; bare: string }> {
  const upstream = await startFakeUpstream({ crates });
  t.after(() => upstream.close());
  const dir = await makeTempDir('mirror-small');
  t.after(() => removeTempDir(dir));
  return { upstream, bare: await upstream.enableGit(dir) };
}

describe('full mirror', () => {
  let upstream: FakeUpstream;
  let bare: string;
  let gitDir: string;
  /** Storage of the first full mirror, reused offline. */
  let mirrored: string;

  before(async () => {
    upstream = await startFakeUpstream({ crates: generatedCrates() });
    gitDir = await makeTempDir('mirror-upstream');
    bare = await upstream.enableGit(gitDir);
    mirrored = await makeTempDir('mirror-store');
  });

  after(async () => {
    await upstream.close();
    await removeTempDir(gitDir);
    await removeTempDir(mirrored);
  });

  test('stores every version of every crate in the git index, verified, in one full pass', async (t) => {
    upstream.resetLog();
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      storageDir: mirrored,
      settings: { all: true, threads: 16 },
    });
    t.after(() => proxy.close());
    const jobs = await mirrorDone(proxy);
    assert.equal(jobs.length, 1, JSON.stringify(jobs));
    const [job] = jobs;
    assert.equal(job?.description, 'full mirror');
    assert.equal(job?.state, 'done');
    const all = upstream.crates();
    assert.equal(all.length, 300);
    assert.deepEqual(
      { ...job?.counts, bytes: 0 },
      { total: 300, fetched: 300, cached: 0, failed: 0, skipped: 0, bytes: 0 },
    );
    const bytes = all.reduce((sum, c) => sum + c.bytes.length, 0);
    assert.equal(job?.counts.bytes, bytes);
    assert.deepEqual([...(await verifiedStore(mirrored, upstream))].sort(), labelsOf(all));
    assert.ok(
      [...downloadCounts(upstream).values()].every((n) => n === 1),
      'each once',
    );
  });

  test('--skip-yanked leaves the yanked versions out', async (t) => {
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      settings: { all: true, threads: 16, skipYanked: true },
    });
    t.after(() => proxy.close());
    const [job] = await mirrorDone(proxy);
    assert.equal(job?.state, 'done');
    assert.equal(job?.counts.total, 298);
    assert.equal(job?.counts.fetched, 298);
    const stored = await verifiedStore(proxy.storageDir, upstream);
    const unyanked = upstream.crates().filter((c) => !c.yanked);
    assert.deepEqual([...stored].sort(), labelsOf(unyanked));
    assert.equal(stored.has('mirror-07@0.1.1'), false);
    assert.equal(stored.has('mxy@1.0.0'), false);
  });

  test('after the mirror, an offline proxy with upstream stopped serves every version and cargo resolves through both protocols', async (t) => {
    await upstream.stop();
    t.after(() => upstream.restart());
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      storageDir: mirrored,
      settings: { offline: true },
    });
    t.after(() => proxy.close());
    await waitFor(() => proxy.deps.git?.ready === true, 10_000, 'the git mirror');
    const all = upstream.crates();
    for (let i = 0; i < all.length; i += 25) {
      await Promise.all(
        all.slice(i, i + 25).map(async (c) => {
          const path = `/api/v1/crates/${c.name}/${encodeURIComponent(c.version)}/download`;
          const response = await fetch(`${proxy.url}${path}`);
          assert.equal(response.status, 200, path);
          const body = Buffer.from(await response.arrayBuffer());
          assert.equal(sha256(body), c.checksum, path);
        }),
      );
    }
    if (!(await cargoAvailable(t))) return;
    // mirror-59 1.0.1 pulls in the chain down to mirror-05; m and Mixed-Case are extra shapes.
    const deps = { 'mirror-59': '1', m: '0.2', mx: '0.1', 'Mixed-Case': '1.0.0' };
    for (const registry of [proxy.sparseRegistry, proxy.gitRegistry]) {
      const box = await makeCargoSandbox({ registry, deps });
      t.after(() => box.remove());
      await box.cargo(['generate-lockfile']);
      await box.cargo(['fetch', '--locked']);
      const lock = await readFile(join(box.projectDir, 'Cargo.lock'), 'utf8');
      for (let i = 5; i < 60; i++) {
        const name = `mirror-${String(i).padStart(2, '0')}`;
        assert.match(lock, new RegExp(`name = "${name}"\\nversion = "1\\.0\\.1"`), registry);
      }
      assert.match(lock, /name = "m"\nversion = "0\.2\.0"/);
      assert.match(lock, /name = "mx"\nversion = "0\.1\.1"/);
    }
  });

  test('with --offline, a mirror pass never contacts upstream and reports what is missing', async (t) => {
    const missing = [upstream.crate('mirror-30', '0.2.0'), upstream.crate('m', '1.0.1')];
    for (const c of missing) await rm(join(mirrored, ...crateKey(c).split('/')));
    // Files removed behind the cache's back are forgotten at the next reconcile.
    const reconciled = await runCliCommand(['reconcile', '-i', mirrored]);
    assert.match(reconciled.stdout, /dropped 2/, reconciled.stderr);
    upstream.resetLog();
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      storageDir: mirrored,
      settings: { offline: true, all: true },
    });
    t.after(() => proxy.close());
    const [job] = await mirrorDone(proxy);
    assert.equal(job?.state, 'done');
    assert.deepEqual(upstream.requests, [], 'nothing was asked of upstream');
    assert.equal(job?.counts.cached, 298);
    assert.deepEqual(
      (job?.report ?? []).filter((e) => e.status === 'failed').map((e) => `${e.name}@${e.version}`),
      labelsOf(missing),
    );
    assert.match(job?.report?.[0]?.reason ?? '', /offline/);
  });

  test('a mirror killed halfway with SIGKILL and stopped with SIGTERM resumes without re-downloading what it stored', async (t) => {
    const dir = await makeTempDir('mirror-resume');
    t.after(() => removeTempDir(dir));
    upstream.resetLog();
    t.after(() => upstream.setFault(undefined, 'crate'));
    const threads = 4;
    const args = ['-p', '0', '--listen', '127.0.0.1', '-i', dir, '-s', upstream.indexUrl];
    args.push('-g', bare, '-a', '-t', String(threads));
    const total = upstream.crates().length;
    const aThird = total / 3;
    /**
     * Lets `count` downloads through, then holds the next ones half-sent: once every worker is
     * held, the pass is stopped at a known point (a worker takes a new crate only once the last
     * one is stored).
     */
    const holdAfter = (count: number): Gate => {
      const gate = new Gate();
      gate.pass(count);
      upstream.setFault({ kind: 'gate', gate }, 'crate');
      return gate;
    };

    // Run 1: killed outright when a third is stored and the next downloads are half-written.
    const firstGate = holdAfter(aThird);
    const first = startCli(t, args);
    await firstGate.arrived(aThird + threads, 60_000);
    first.child.kill('SIGKILL');
    assert.equal((await first.exit).signal, 'SIGKILL');
    const afterKill = await verifiedStore(dir, upstream);
    assert.ok(afterKill.size < total, `${afterKill.size} stored`);

    // Run 2: asked to stop at two thirds with downloads in flight; they finish, and it exits
    // promptly.
    const secondGate = holdAfter(aThird);
    const second = startCli(t, args);
    await secondGate.arrived(aThird + threads, 60_000);
    second.child.kill('SIGTERM');
    await waitFor(
      () => second.messages.some((msg) => /^shutting down/.test(msg)),
      10_000,
      'SIGTERM',
    );
    secondGate.open();
    const stopped = await Promise.race([second.exit, delay(10_000, undefined)]);
    assert.ok(stopped, 'the CLI exits within 10 s of SIGTERM');
    assert.equal(stopped.code, 0, stopped.stderr);
    const afterTerm = await verifiedStore(dir, upstream);
    assert.ok(afterTerm.size < total, `${afterTerm.size} stored`);

    // Run 3: finishes, fetching only what is missing.
    upstream.setFault(undefined, 'crate');
    const third = startCli(t, args);
    const url = await third.url;
    const job = await cliMirrorDone(url);
    assert.equal(job.state, 'done');
    assert.equal(job.counts.failed, 0, JSON.stringify(job.report?.slice(0, 3)));
    assert.equal(job.counts.cached, afterTerm.size);
    assert.equal(job.counts.fetched, total - afterTerm.size);
    third.child.kill('SIGTERM');
    assert.equal((await third.exit).code, 0);
    const summary = `mirror finished: ${total - afterTerm.size} fetched, ${afterTerm.size} already cached, 0 failed, 0 skipped`;
    assert.ok(
      third.messages.some((msg) => msg.startsWith(summary)),
      third.messages.join('\n'),
    );
    assert.deepEqual([...(await verifiedStore(dir, upstream))].sort(), labelsOf(upstream.crates()));

    const counts = downloadCounts(upstream);
    const twice = [...counts].filter(([, n]) => n > 1).map(([label]) => label);
    for (const label of afterKill)
      assert.equal(counts.get(label), 1, `${label} stored before the kill`);
    // Only downloads still in flight at the SIGKILL (at most -t 4) may have been repeated.
    assert.ok(twice.length <= 4, `downloaded again: ${twice.join(', ')}`);
    assert.ok([...counts.values()].every((n) => n <= 2));
    for (const label of twice) assert.equal(afterKill.has(label), false, label);
  });

  test('-a with --no-git fails with a clear message', async (t) => {
    const dir = await makeTempDir('mirror-no-git');
    t.after(() => removeTempDir(dir));
    const config = buildConfig({
      port: 0,
      listen: '127.0.0.1',
      storageDir: join(dir, 'store'),
      sparseUpstream: upstream.indexUrl,
      all: true,
    });
    const log = createLogger({ level: 'silent', format: 'json' });
    await assert.rejects(startInstance(config, log), /-a\/--all .*needs the git mirror.*--no-git/);
    const cli = startCli(t, ['-p', '0', '--listen', '127.0.0.1', '-i', dir, '-a', '--no-git']);
    const exit = await cli.exit;
    assert.notEqual(exit.code, 0);
    const lines = exit.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, exit.stderr);
    assert.match(lines[0] ?? '', /^cargo-cacher: -a\/--all .*--no-git/);
  });
});

describe('mirror passes', () => {
  test('run one at a time: refreshes during a full pass queue one incremental pass for what they added', async (t) => {
    const crates: FakeCrateSpec[] = [];
    for (let i = 0; i < 20; i++) {
      for (const version of ['0.1.0', '0.2.0']) crates.push({ name: `one-${i}`, version });
    }
    const { upstream, bare } = await smallUpstream(t, crates);
    // The full pass's downloads are held part-way until the refreshes are done.
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    const proxy = await startProxy({ upstream, gitUrl: bare, settings: { all: true, threads: 2 } });
    t.after(() => proxy.close());
    const git = proxy.deps.git;
    assert.ok(git);

    let mostRunning = 0;
    const sampler = setInterval(() => {
      const running = proxy.deps.jobs.running().filter((job) => job.kind === 'mirror').length;
      mostRunning = Math.max(mostRunning, running);
    }, 2);
    t.after(() => clearInterval(sampler));

    await gate.arrived(2);
    await upstream.addCrate({ name: 'one-3', version: '0.3.0' });
    assert.equal(await git.refresh(), true);
    await upstream.addCrate({ name: 'one-new', version: '1.0.0' });
    assert.equal(await git.refresh(), true);
    assert.equal(await git.refresh(), true, 'a refresh that changes nothing');
    assert.deepEqual(
      mirrorJobs(proxy).map((job) => [job.description, job.state]),
      [['full mirror', 'running']],
      'the full pass is still running and nothing else has started',
    );
    gate.open();

    const jobs = await mirrorDone(proxy);
    clearInterval(sampler);
    assert.equal(mostRunning, 1, 'never two mirror jobs at once');
    assert.deepEqual(
      jobs.map((job) => [job.description, job.state]),
      [
        ['incremental mirror (2 crates)', 'done'],
        ['full mirror', 'done'],
      ],
    );
    const [incremental, full] = jobs;
    assert.equal(full?.counts.fetched, 40);
    assert.deepEqual(
      (incremental?.report ?? []).map((e) => `${e.name}@${e.version} ${e.status}`).sort(),
      ['one-3@0.1.0 cached', 'one-3@0.2.0 cached', 'one-3@0.3.0 fetched', 'one-new@1.0.0 fetched'],
    );
    const stored = await verifiedStore(proxy.storageDir, upstream);
    assert.equal(stored.size, 42);
    assert.ok(stored.has('one-3@0.3.0') && stored.has('one-new@1.0.0'));
  });

  test('a brief upstream outage during a pass is ridden out: nothing is reported failed', async (t) => {
    const crates: FakeCrateSpec[] = [];
    for (let i = 0; i < 30; i++) crates.push({ name: `blip-${i}`, version: '1.0.0' });
    const { upstream, bare } = await smallUpstream(t, crates);
    upstream.setFault({ kind: 'status', status: 500 }, 'crate');
    // A short cool-down keeps the test short; the outage still opens the circuit.
    const resilience = { ...DEFAULTS.resilience, breakerCoolDownMs: 1500 };
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      settings: { all: true, threads: 4, resilience },
    });
    t.after(() => proxy.close());
    // The outage lasts until it has opened the circuit, then ends while the pass still retries.
    const open = () => (proxy.deps.circuits?.() ?? []).some((circuit) => circuit.state === 'open');
    await waitFor(open, 20_000, 'the outage to open the circuit');
    upstream.setFault(undefined, 'crate');
    const [job] = await mirrorDone(proxy);
    assert.equal(job?.state, 'done');
    const failed = (job?.report ?? []).filter((e) => e.status === 'failed');
    assert.deepEqual(failed, [], 'no version failed for good');
    assert.equal(job?.counts.fetched, 30);
    assert.equal((await verifiedStore(proxy.storageDir, upstream)).size, 30);
  });

  test('a version that keeps failing is reported failed after a bounded number of attempts, and the pass finishes', async (t) => {
    const crates: FakeCrateSpec[] = ['ok-a', 'ok-b', 'ok-c', 'ok-d', 'bad-500', 'bad-404'].map(
      (name) => ({ name, version: '0.1.0' }),
    );
    const { upstream, bare } = await smallUpstream(t, crates);
    const gate = await startDownloadGate(upstream, { 'bad-500': 500, 'bad-404': 404 });
    t.after(() => gate.close());
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      settings: {
        all: true,
        threads: 3,
        crateUpstream: `${gate.url}/dl`,
        // The failing version opens the gate's circuit; a short cool-down keeps the test short.
        resilience: { ...DEFAULTS.resilience, breakerCoolDownMs: 1000 },
      },
    });
    t.after(() => proxy.close());
    const [job] = await mirrorDone(proxy, 30_000);
    assert.equal(job?.state, 'done');
    assert.deepEqual(
      { ...job?.counts, bytes: 0 },
      { total: 6, fetched: 4, cached: 0, failed: 2, skipped: 0, bytes: 0 },
    );
    const reasons = new Map((job?.report ?? []).map((e) => [e.name, e.reason]));
    assert.match(reasons.get('bad-500') ?? '', /500/);
    assert.match(reasons.get('bad-404') ?? '', /404/);
    // Retried (by the job, and perhaps by the upstream client too), but a bounded number of
    // times; a 404 will not get better, so it is asked once.
    const attempts = gate.count('bad-500');
    assert.ok(attempts > 1 && attempts <= 16, `${attempts} attempts`);
    assert.equal(gate.count('bad-404'), 1);
    assert.ok(gate.mostConcurrent <= 3, `at most -t 3 downloads at once (${gate.mostConcurrent})`);
    const stored = await verifiedStore(proxy.storageDir, upstream);
    assert.deepEqual([...stored].sort(), ['ok-a@0.1.0', 'ok-b@0.1.0', 'ok-c@0.1.0', 'ok-d@0.1.0']);
  });
});

describe('index tree reader', () => {
  test('stopped early, ends its git cat-file without an unhandled error', async (t) => {
    const dir = await makeTempDir('tree-reader');
    t.after(() => removeTempDir(dir));
    const gitDir = join(dir, 'repo.git');
    const git = async (args: string[], input?: string) => {
      const child = spawn('git', [`--git-dir=${gitDir}`, ...args], { stdio: 'pipe' });
      child.stdin.end(input);
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      const [code] = await once(child, 'exit');
      assert.equal(code, 0, `git ${args.join(' ')}`);
      return out.trim();
    };
    await git(['init', '--bare', '--quiet']);
    // A 100 kB file asked for 100,000 times: both pipes fill long before the reader stops.
    const blob = await git(['hash-object', '-w', '--stdin'], 'x'.repeat(100_000));
    const tree = await git(['mktree'], `100644 blob ${blob}\tbig\n`);
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    t.after(() => process.off('unhandledRejection', onUnhandled));

    const paths = Array.from({ length: 100_000 }, () => 'big');
    const files = readTreeFiles(gitDir, tree, paths)[Symbol.asyncIterator]();
    const first = await files.next();
    assert.equal(first.value?.body.length, 100_000);
    await delay(200);
    await files.return?.(undefined);
    await delay(500);
    assert.deepEqual(unhandled, []);
    const { stdout } = await execFileAsync('ps', ['-eo', 'args']);
    assert.equal(stdout.includes(gitDir), false, 'git cat-file has ended');
  });
});

/**
 * A download source in front of the fake upstream: answers the given status for some crates,
 * redirects the rest to the upstream, counts requests per crate and the most at once.
 */
async function startDownloadGate(upstream: FakeUpstream, statuses: Record<string, number>) {
  const requests = new Map<string, number>();
  let open = 0;
  const gate = {
    url: '',
    mostConcurrent: 0,
    count: (name: string) => requests.get(name) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer((req, res) => {
    const [, , name = '', version = ''] = (req.url ?? '').split('/');
    requests.set(name, (requests.get(name) ?? 0) + 1);
    open++;
    gate.mostConcurrent = Math.max(gate.mostConcurrent, open);
    res.on('close', () => {
      open--;
    });
    // Held briefly, so concurrent downloads overlap and can be counted.
    setTimeout(() => {
      const status = statuses[name];
      if (status !== undefined) res.writeHead(status).end(`injected ${status}\n`);
      else res.writeHead(302, { location: `${upstream.url}/dl/${name}/${version}/download` }).end();
    }, 30);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  gate.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return gate;
}
