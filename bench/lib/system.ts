/**
 * @module
 * The machine: installing the tools the benchmark needs (Debian's nginx and wrk), describing
 * the machine and versions for the report, free ports, and the small statistics used.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { run } from './procs.ts';

const execFileAsync = promisify(execFile);

async function has(command: string): Promise<boolean> {
  try {
    await execFileAsync('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's `nginx` and `wrk` when missing (`apt-get update` once first). */
export async function ensureTools(log: (line: string) => void): Promise<void> {
  const missing: string[] = [];
  if (!(await has('nginx')) && !(await has('/usr/sbin/nginx'))) missing.push('nginx');
  if (!(await has('wrk'))) missing.push('wrk');
  if (!(await has('openssl'))) missing.push('openssl');
  if (missing.length === 0) return;
  log(`installing ${missing.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, timeoutMs: 300_000 });
  await run('apt-get', ['install', '-y', '-qq', ...missing], { env, timeoutMs: 600_000 });
}

/** The nginx binary (Debian puts it in /usr/sbin, which a non-login PATH may lack). */
export async function nginxBinary(): Promise<string> {
  return (await has('nginx')) ? 'nginx' : '/usr/sbin/nginx';
}

/** Versions and hardware, for the report's header. */
export interface MachineInfo {
  cpus: string;
  memory: string;
  node: string;
  nginx: string;
  wrk: string;
  cargo: string;
  kernel: string;
  /** 1-minute load average when the run started. */
  loadAtStart: number;
}

/** Describes the machine and the tools' versions. */
export async function machineInfo(): Promise<MachineInfo> {
  const first = async (command: string, args: string[]) => {
    try {
      const { stdout, stderr } = await execFileAsync(command, args);
      return `${stdout}${stderr}`.trim().split('\n')[0] ?? '?';
    } catch (err) {
      // wrk prints its version with exit status 1.
      const out = err as { stdout?: string; stderr?: string };
      return `${out.stdout ?? ''}${out.stderr ?? ''}`.trim().split('\n')[0] || 'not found';
    }
  };
  const model = cpus()[0]?.model ?? 'unknown';
  return {
    cpus: `${cpus().length} × ${model}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    nginx: (await first(await nginxBinary(), ['-v'])).replace(/^nginx version: /, ''),
    wrk: (await first('wrk', ['--version'])).replace(/ Copyright.*$/, ''),
    cargo: await first('cargo', ['--version']),
    kernel: (await readFile('/proc/version', 'utf8')).split(' ').slice(0, 3).join(' '),
    loadAtStart: loadavg()[0] ?? 0,
  };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Peak and current resident memory of a process, from /proc (bytes). */
export async function memoryOf(pid: number): Promise<{ hwm: number; rss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { hwm: kb('VmHWM') * 1024, rss: kb('VmRSS') * 1024 };
}

/** Median, minimum and maximum of some samples. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** Summarises samples (at least one). */
export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number, samples };
}
