/**
 * @module
 * `npm run soak`: hundreds of concurrent clients against a real cargo-cacher process for a few
 * minutes (`SOAK_SECONDS`, default 180; `SOAK_CLIENTS`, default 300), on loopback only, mixing
 * cached downloads, misses, index revalidations (conditional GETs) and git fetches. The proxy
 * runs as a child process so this load generator does not share its event loop; a probe loaded
 * into it reports memory and event-loop delay every second. Stops by itself, prints the figures
 * (Markdown; also to the file `SOAK_REPORT` names), and exits 1 when a hit failed, the loop
 * stalled over 100 ms, or memory or file descriptors kept growing. Not part of `npm test`.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { type CliProcess, startCli } from '../test/helpers/cli-process.ts';
import { type FakeUpstream, startFakeUpstream } from '../test/helpers/fake-upstream.ts';
import { makeTempDir, removeTempDir } from '../test/helpers/temp-dir.ts';
import { type Kind, type ProbeSample, renderReport, type Sample, Tally } from './soak-report.ts';

const execFileAsync = promisify(execFile);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 300);
const HOT = 120;
const COLD = 2500;
/** Misses per second at most, so the cold pool lasts the whole run. */
const MISS_RATE = Math.max(1, Math.floor(COLD / SECONDS));
const GIT_WORKERS = 2;
/**
 * Each client pauses between requests (uniformly up to twice this, `SOAK_THINK_MS`), as cargo
 * does between its sequential requests: a soak is a steady load with headroom, not a saturation
 * test (on 2 shared cores that would measure this process's CPU use, not the proxy's loop).
 */
const THINK_MS = Number(process.env.SOAK_THINK_MS ?? 250);

async function main(): Promise<void> {
  const work = await makeTempDir('soak');
  let proxy: CliProcess | undefined;
  let upstream: FakeUpstream | undefined;
  try {
    log(`publishing ${HOT} hot and ${COLD} cold crates`);
    upstream = await startFakeUpstream({ crates: crateSpecs() });
    const bare = await upstream.enableGit(join(work, 'upstream-git'));
    const probe = new URL('./soak-probe.mjs', import.meta.url).pathname;
    proxy = await startCli(
      [
        '-i',
        join(work, 'storage'),
        '-s',
        upstream.indexUrl,
        '-g',
        bare,
        '-r',
        '10s',
        '--index-ttl',
        '2s',
        // The soak's clients all come from 127.0.0.1, standing in for many machines: the
        // per-address cap (256 by default) would otherwise refuse the 257th of them.
        '--max-connections-per-ip',
        '100000',
      ],
      {
        // SOAK_PROXY_NODE_ARGS: extra node flags for the proxy (`--trace-gc`, `--cpu-prof`).
        nodeArgs: ['--import', probe, ...(process.env.SOAK_PROXY_NODE_ARGS?.split(' ') ?? [])],
        ipc: true,
        env: { NODE_ENV: 'production' },
      },
    );
    const probes: ProbeSample[] = [];
    proxy.child.on('message', (message: ProbeSample) => probes.push(message));
    const agent = new Agent({ connections: CLIENTS, keepAliveTimeout: 30_000 });
    const run = new Run(proxy.url, agent, upstream);
    await run.warmUp();
    const clones = await Promise.all(
      Array.from({ length: GIT_WORKERS }, (_, i) => run.clone(join(work, `clone-${i}`))),
    );
    log(`load: ${CLIENTS} clients for ${SECONDS}s against ${proxy.url} (pid ${proxy.pid})`);
    const samples: Sample[] = [];
    const pid = proxy.pid;
    const sampler = setInterval(() => samples.push(sampleProcess(pid)), 1000);
    // Startup (module loading, the first git clone) and warm-up are not the steady state.
    probes.length = 0;
    const end = Date.now() + SECONDS * 1000;
    await Promise.all([
      ...Array.from({ length: CLIENTS }, () => run.client(end)),
      ...clones.map((dir) => run.gitWorker(dir, end)),
      run.publisher(end),
    ]);
    clearInterval(sampler);
    if (process.env.SOAK_DEBUG) {
      for (const p of probes) {
        const { loopDelayMaxMs: loop, cpuMs: cpu, runQueueMs: runq } = p;
        log(`probe loop ${loop.toFixed(0)} cpu ${cpu?.toFixed(0)} runq ${runq?.toFixed(0)}`);
      }
      log(`proxy stderr: ${proxy.stderr().slice(-20_000)}`);
    }
    await agent.close();
    const report = renderReport({
      seconds: SECONDS,
      clients: CLIENTS,
      tally: run.tally,
      samples,
      probes,
    });
    process.stdout.write(`${report.markdown}\n`);
    if (process.env.SOAK_REPORT) await writeFile(process.env.SOAK_REPORT, `${report.markdown}\n`);
    if (report.failures.length > 0) {
      process.stderr.write(`soak failed:\n- ${report.failures.join('\n- ')}\n`);
      process.exitCode = 1;
    }
  } finally {
    await proxy?.stop();
    await upstream?.close();
    await removeTempDir(work);
  }
}

/** The clients' side of the run: what they ask and what they got. */
class Run {
  readonly tally = new Tally();
  readonly #url: string;
  readonly #agent: Agent;
  readonly #upstream: FakeUpstream;
  readonly #etags = new Map<string, string>();
  #nextCold = 0;
  #missBudget = 0;
  #published = 0;

  constructor(url: string, agent: Agent, upstream: FakeUpstream) {
    this.#url = url;
    this.#agent = agent;
    this.#upstream = upstream;
    setInterval(() => {
      this.#missBudget = MISS_RATE;
    }, 1000).unref();
  }

  async warmUp(): Promise<void> {
    for (let i = 0; i < HOT; i++) {
      const crate = this.#upstream.crate(`hot-${i}`, '1.0.0');
      await this.#get(`/index/${crate.indexPath}`, 'index');
      await this.#get(`/api/v1/crates/hot-${i}/1.0.0/download`, 'hit');
    }
    this.tally.reset();
  }

  async clone(dir: string): Promise<string> {
    await execFileAsync('git', ['clone', '-q', '--bare', `${this.#url}/index`, dir]);
    return dir;
  }

  async client(end: number): Promise<void> {
    while (Date.now() < end) {
      const roll = Math.random();
      const hot = Math.floor(Math.random() * HOT);
      if (roll < 0.12 && this.#missBudget > 0 && this.#nextCold < COLD) {
        this.#missBudget -= 1;
        await this.#get(`/api/v1/crates/cold-${this.#nextCold++}/1.0.0/download`, 'miss');
      } else if (roll < 0.45) {
        await this.#get(`/index/${this.#upstream.crate(`hot-${hot}`, '1.0.0').indexPath}`, 'index');
      } else {
        await this.#get(`/api/v1/crates/hot-${hot}/1.0.0/download`, 'hit');
      }
      await sleep(Math.random() * 2 * THINK_MS);
    }
  }

  /** A git client fetching from the proxy's mirror, one fetch after another. */
  async gitWorker(dir: string, end: number): Promise<void> {
    while (Date.now() < end) {
      const started = performance.now();
      try {
        await execFileAsync('git', [
          '--git-dir',
          dir,
          'fetch',
          '-q',
          'origin',
          '+HEAD:refs/heads/x',
        ]);
        this.tally.record('git', performance.now() - started, true);
      } catch (err) {
        this.tally.record('git', performance.now() - started, false, (err as Error).message);
      }
      await sleep(500);
    }
  }

  /** New versions upstream now and then, so refreshes and revalidations have work to do. */
  async publisher(end: number): Promise<void> {
    while (Date.now() + 5000 < end) {
      await sleep(5000);
      await this.#upstream.addCrate({
        name: `hot-${this.#published++ % HOT}`,
        version: `1.0.${this.#published}`,
      });
    }
  }

  async #get(path: string, kind: Kind): Promise<void> {
    const started = performance.now();
    const headers: Record<string, string> = {};
    const etag = kind === 'index' ? this.#etags.get(path) : undefined;
    if (etag) headers['if-none-match'] = etag;
    try {
      const response = await request(`${this.#url}${path}`, { dispatcher: this.#agent, headers });
      let bytes = 0;
      for await (const chunk of response.body) bytes += (chunk as Buffer).length;
      const expected = Number(response.headers['content-length'] ?? bytes);
      const ok =
        (response.statusCode === 200 && bytes === expected) ||
        (kind === 'index' && response.statusCode === 304);
      const newTag = response.headers.etag;
      if (kind === 'index' && typeof newTag === 'string') this.#etags.set(path, newTag);
      this.tally.record(
        kind,
        performance.now() - started,
        ok,
        ok ? undefined : `${path}: ${response.statusCode}`,
        kind === 'index' && response.statusCode === 304,
      );
    } catch (err) {
      this.tally.record(
        kind,
        performance.now() - started,
        false,
        `${path}: ${(err as Error).message}`,
      );
    }
  }
}

function crateSpecs() {
  const hot = Array.from({ length: HOT }, (_, i) => ({
    name: `hot-${i}`,
    version: '1.0.0',
    // A few large crates among many small ones, as in a real lock file.
    padBytes: i % 10 === 0 ? 400_000 : 2_000,
  }));
  const cold = Array.from({ length: COLD }, (_, i) => ({ name: `cold-${i}`, version: '1.0.0' }));
  return [...hot, ...cold];
}

/** RSS and open file descriptors of the proxy, read from /proc (Linux). */
function sampleProcess(pid: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { at: Date.now(), rss: rssKb * 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function log(line: string): void {
  process.stderr.write(`soak: ${line}\n`);
}

await main();
