/**
 * @module
 * Running the system `git` against cargo-cacher's own repository only: the git dir is always
 * given explicitly, system and global config are ignored, and no identity or prompt is needed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';

/** Environment for every git child: isolated from the user's git setup. */
export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    // The overlay commit needs an identity; the seed failed without a user one (its issue #18).
    GIT_AUTHOR_NAME: 'cargo-cacher',
    GIT_AUTHOR_EMAIL: 'cargo-cacher@localhost',
    GIT_COMMITTER_NAME: 'cargo-cacher',
    GIT_COMMITTER_EMAIL: 'cargo-cacher@localhost',
    LC_ALL: 'C',
    ...extra,
  };
}

/** Output of a finished git command. */
export interface GitResult {
  stdout: Buffer;
  stderr: string;
}

/** Options of {@link runGit}. */
export interface RunGitOptions {
  input?: Buffer | string;
  env?: Record<string, string>;
  /** Called with each line git writes to stderr (progress). */
  onStderrLine?: (line: string) => void;
  /** Kills git and its children when aborted (shutdown during a long fetch). */
  signal?: AbortSignal;
}

/**
 * Runs `git --git-dir=<gitDir> <args>` and resolves with its output, or rejects with an error
 * whose message is git's last stderr line.
 */
export function runGit(
  gitDir: string,
  args: string[],
  options: RunGitOptions = {},
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [`--git-dir=${gitDir}`, ...args], {
      env: gitEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so an abort also reaches the helpers a fetch starts
      // (git-remote-http blocked on a silent server outlives a killed `git fetch`).
      detached: options.signal !== undefined,
    });
    const abort = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    };
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stderr = (stderr + text).slice(-16_384);
      if (options.onStderrLine)
        for (const line of text.split(/[\r\n]+/)) if (line) options.onStderrLine(line);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', abort);
      if (code === 0) {
        resolve({ stdout: Buffer.concat(stdout), stderr });
        return;
      }
      const last =
        stderr
          .trim()
          .split(/[\r\n]+/)
          .pop() ?? '';
      reject(new Error(`git ${args[0]} failed (${signal ?? `exit ${code}`}): ${last}`));
    });
    child.stdin.on('error', () => {
      // git may exit before reading all input; its exit code tells what happened.
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs git and returns its stdout as trimmed text. */
export async function gitText(
  gitDir: string,
  args: string[],
  options?: RunGitOptions,
): Promise<string> {
  return (await runGit(gitDir, args, options)).stdout.toString('utf8').trim();
}

/**
 * Spawns a long-running git child with piped stdio (upload-pack, cat-file). The caller owns it.
 * It leads its own process group, so {@link killGitGroup} also ends the helpers it starts
 * (upload-pack runs `git pack-objects`, which would otherwise go on packing for a gone client).
 */
export function spawnGit(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn('git', args, { env: gitEnv(env), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/** Kills a child from {@link spawnGit} and its helpers, if it is still running. */
export function killGitGroup(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** `git --version`, to fail early with a clear line when git is missing. */
export function gitVersion(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', ['--version'], { env: gitEnv() }, (err, stdout) => {
      if (err) reject(new Error(`git is not installed or not runnable: ${err.message}`));
      else resolve(stdout.trim());
    });
  });
}
