/**
 * @module
 * What the scale measurements read from the outside: timed HTTP requests, the crate bytes
 * gauge of `/metrics`, CPU time and peak memory from /proc, crate bytes actually on disk, and
 * a command's wall time and peak RSS through `/usr/bin/time -v`.
 */
import { execFile } from 'node:child_process';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import { run } from '../lib/procs.ts';

const execFileAsync = promisify(execFile);

/** One answered request: status, body and milliseconds from send to the end of the body. */
export interface Timed {
  status: number;
  body: string;
  ms: number;
}

/** GET `url`, timing the whole exchange. Connection errors reject. */
export async function timedGet(url: string): Promise<Timed> {
  const start = performance.now();
  const res = await request(url, { headersTimeout: 900_000, bodyTimeout: 900_000 });
  const body = await res.body.text();
  return { status: res.statusCode, body, ms: performance.now() - start };
}

/**
 * Polls `url` every 10 ms until it answers 200 and returns the milliseconds since `since`
 * (a `performance.now()` value); refused connections and other statuses count as not yet.
 */
export async function msUntil200(url: string, since: number, timeoutMs: number): Promise<number> {
  const deadline = since + timeoutMs;
  for (;;) {
    try {
      if ((await timedGet(url)).status === 200) return performance.now() - since;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline)
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await delay(10);
  }
}

/** `cargo_cacher_cache_size_bytes{area="crates"}` from a /metrics body, if present. */
export function crateBytesGauge(metrics: string): number | undefined {
  const match = /^cargo_cacher_cache_size_bytes\{area="crates"\} (\S+)$/m.exec(metrics);
  return match ? Number(match[1]) : undefined;
}

/** Bytes of the `.crate` files under a storage root, summed from the disk itself. */
export async function crateBytesOnDisk(storageDir: string): Promise<number> {
  const root = join(storageDir, 'crates');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  let bytes = 0;
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.crate')) continue;
    bytes += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return bytes;
}

let clockTicks: number | undefined;

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  clockTicks ??= await ticksPerSecond();
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces, start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

async function ticksPerSecond(): Promise<number> {
  try {
    return Number((await execFileAsync('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  } catch {
    return 100;
  }
}

/** Nearest-rank percentile of samples (p in 0..100). */
export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Wall time, peak RSS and output of one command run to completion. */
export interface CommandCost {
  seconds: number;
  peakRssBytes: number;
  stdout: string;
}

/**
 * Runs a command under `/usr/bin/time -v` for its peak RSS (the launcher execs node, so that
 * is node's). Without GNU time the peak is not known (NaN, shown as n/a).
 */
export async function measureCommand(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<CommandCost> {
  const hasTime = await access('/usr/bin/time').then(
    () => true,
    () => false,
  );
  const start = performance.now();
  if (hasTime) {
    const { stdout, stderr } = await run('/usr/bin/time', ['-v', command, ...args], { timeoutMs });
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1]);
    return { seconds: (performance.now() - start) / 1000, peakRssBytes: kb * 1024, stdout };
  }
  const { stdout } = await run(command, args, { timeoutMs });
  return { seconds: (performance.now() - start) / 1000, peakRssBytes: Number.NaN, stdout };
}
