/**
 * @module
 * The real `cargo-cacher` command as a child process (`node --import tsx src/cli/main.ts`), for
 * tests that kill it (SIGKILL at any moment, like a machine dying) and for the soak test, which
 * must not share the proxy's event loop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');

/** A running CLI. */
export interface CliProcess {
  child: ChildProcess;
  pid: number;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Every JSON log line so far. */
  logs: { level: string; msg: string; [key: string]: unknown }[];
  stderr(): string;
  /** SIGKILLs the process and every process it started (git), and waits for it to be gone. */
  kill9(): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Options of {@link startCli}. */
export interface CliOptions {
  /** Extra `node` flags before the script (e.g. `--import` of a probe). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Give up waiting for the startup line after this long. */
  timeoutMs?: number;
  /** Open an IPC channel (for a probe loaded with `nodeArgs` to report through). */
  ipc?: boolean;
  /** A program (and its arguments) that runs `node` for us, e.g. `setpriv` to drop root. */
  wrapper?: string[];
}

/** Starts `cargo-cacher <args>` listening on 127.0.0.1 port 0 and waits until it listens. */
export async function startCli(args: string[], options: CliOptions = {}): Promise<CliProcess> {
  const [program, ...programArgs] = [...(options.wrapper ?? []), process.execPath];
  const child = spawn(
    program as string,
    [
      ...programArgs,
      ...(options.nodeArgs ?? []),
      '--import',
      TSX,
      MAIN,
      '-p',
      '0',
      '--listen',
      '127.0.0.1',
      ...args,
    ],
    {
      cwd: REPO,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: CliProcess['logs'] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no startup line: ${stderr}`)),
      options.timeoutMs ?? 30_000,
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let record: CliProcess['logs'][number];
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(record);
      if (typeof record.listen === 'string') {
        clearTimeout(timer);
        resolve(`http://${record.listen}`);
      }
    });
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited before listening: ${stderr}`));
    }, reject);
  });
  const pid = child.pid as number;
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    pid,
    url,
    logs,
    stderr: () => stderr,
    async kill9() {
      if (gone()) return;
      for (const descendant of [pid, ...descendantsOf(pid)]) {
        try {
          process.kill(descendant, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    },
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Every process below `pid`, read from /proc before anything is killed (orphans lose it). */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** What a one-shot command printed, and how it ended. */
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output and resolves when it exits (killing it after `timeoutMs`). */
export async function finished(child: ChildProcess, timeoutMs = 30_000): Promise<CommandResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `cargo-cacher <args>` (a one-shot command: `gc`, `reconcile`, …) to its end. */
export function runCliCommand(args: string[], timeoutMs = 60_000): Promise<CommandResult> {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return finished(child, timeoutMs);
}
