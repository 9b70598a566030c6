/**
 * @module
 * Child processes of the benchmark (the proxy, nginx, wrk, cargo), tracked so that every one is
 * killed at the end: on success, on error and on SIGINT/SIGTERM.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

const children = new Set<ChildProcess>();

/** A spawned child with its collected output. */
export interface Child {
  process: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) when the child exits. */
  exited: Promise<number | string>;
}

/** Spawns a tracked child; output is kept (bounded) for error messages. */
export function startChild(command: string, args: string[], options: SpawnOptions = {}): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  children.add(child);
  let out = '';
  let err = '';
  const keep = (text: string, chunk: Buffer) => (text + chunk.toString()).slice(-64 * 1024);
  child.stdout?.on('data', (chunk: Buffer) => {
    out = keep(out, chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err = keep(err, chunk);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (error) => {
      children.delete(child);
      resolve(`spawn failed: ${error.message}`);
    });
  });
  if (child.pid === undefined) throw new Error(`cannot start ${command}`);
  return { process: child, pid: child.pid, stdout: () => out, stderr: () => err, exited };
}

/** Runs a command to completion within `timeoutMs` (killed after), failing on non-zero exit. */
export async function run(
  command: string,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  const { timeoutMs = 600_000, ...spawnOptions } = options;
  const child = startChild(command, args, spawnOptions);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
  try {
    const code = await child.exited;
    if (code !== 0) {
      throw new Error(
        `${command} ${args.join(' ')} exited with ${code}:\n${child.stderr().slice(-4000)}`,
      );
    }
    return { stdout: child.stdout(), stderr: child.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 5_000): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const exited = await Promise.race([child.exited.then(() => true), delay(graceMs, false)]);
  if (!exited) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
}

/** Kills every child still running at once (SIGKILL): the last resort, on process exit. */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

/**
 * Stops every child still running: SIGTERM first, so nginx's master takes its workers down
 * with it (a SIGKILLed master leaves them running), then SIGKILL what is left after `graceMs`.
 */
export async function stopAllChildren(graceMs = 3_000): Promise<void> {
  const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  const exits = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of running) child.kill('SIGTERM');
  await Promise.race([Promise.all(exits), delay(graceMs)]);
  killAllChildren();
}

/** Stops the children when the benchmark is interrupted, then exits with 130/143. */
export function killChildrenOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`);
      void stopAllChildren().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  process.once('exit', killAllChildren);
}

/** Waits until `port` on 127.0.0.1 accepts connections, failing after `timeoutMs`. */
export async function waitForPort(port: number, child: Child, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null) {
      throw new Error(`process exited before port ${port} opened:\n${child.stderr().slice(-2000)}`);
    }
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await delay(50);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
