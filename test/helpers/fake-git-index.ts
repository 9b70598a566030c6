/**
 * @module
 * The git flavour of the fake index: a work repo that commits index files and pushes them to a
 * bare repo tests can clone or fetch from, including crates.io's periodic history squash.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Identity and signing are passed per command so no global git config is needed or read; the
 * environment below also hides the system config and points HOME at a private directory.
 */
const GIT_CONFIG = [
  '-c',
  'user.name=cargo-cacher tests',
  '-c',
  'user.email=tests@cargo-cacher.invalid',
  '-c',
  'commit.gpgsign=false',
  '-c',
  'core.autocrlf=false',
];

/** A work repo plus the bare repo it pushes `master` to. */
export class FakeGitIndex {
  /** The bare repo: `git clone <barePath>` works. */
  readonly barePath: string;
  readonly #workPath: string;
  readonly #env: NodeJS.ProcessEnv;
  /** Git commands of one change must not interleave with another's, so changes queue up. */
  #queue: Promise<void> = Promise.resolve();

  private constructor(dir: string) {
    this.barePath = join(dir, 'upstream.git');
    this.#workPath = join(dir, 'work');
    this.#env = gitEnv(join(dir, 'home'));
  }

  /** Creates both repos in `dir` and commits `files` (path below the root → body) as master. */
  static async create(dir: string, files: Map<string, Buffer>): Promise<FakeGitIndex> {
    const index = new FakeGitIndex(dir);
    await mkdir(join(dir, 'home'), { recursive: true });
    await index.#git('init', '-q', index.#workPath);
    await index.#git('-C', index.#workPath, 'symbolic-ref', 'HEAD', 'refs/heads/master');
    await index.#git('init', '-q', '--bare', index.barePath);
    // A bare repo's HEAD is what clients (and cargo's +HEAD refspec) follow.
    await index.#git('--git-dir', index.barePath, 'symbolic-ref', 'HEAD', 'refs/heads/master');
    await index.commit(files, 'Initial index');
    return index;
  }

  /** Writes `files`, commits them (even when nothing changed) and pushes master. */
  async commit(files: Map<string, Buffer | undefined>, message: string): Promise<void> {
    await this.#enqueue(async () => {
      for (const [path, body] of files) {
        const target = join(this.#workPath, path);
        // No body: the file is deleted (its crate's last version removed).
        if (body === undefined) {
          await rm(target, { force: true });
          continue;
        }
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, body);
      }
      await this.#git('-C', this.#workPath, 'add', '-A');
      await this.#git('-C', this.#workPath, 'commit', '-q', '--allow-empty', '-m', message);
      await this.#push();
    });
  }

  /** Replaces master with one parentless commit of the same tree, force-pushed, like crates.io. */
  async squash(): Promise<void> {
    await this.#enqueue(async () => {
      const tree = await this.#git('-C', this.#workPath, 'rev-parse', 'HEAD^{tree}');
      const message = 'Collapse index into one commit';
      const commit = await this.#git('-C', this.#workPath, 'commit-tree', tree, '-m', message);
      await this.#git('-C', this.#workPath, 'update-ref', 'refs/heads/master', commit);
      await this.#push();
    });
  }

  /** Resolves once every queued change has been pushed (or failed). */
  async idle(): Promise<void> {
    await this.#queue.catch(() => undefined);
  }

  async #push(): Promise<void> {
    const refspec = '+refs/heads/master:refs/heads/master';
    await this.#git('-C', this.#workPath, 'push', '-q', this.barePath, refspec);
  }

  async #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.catch(() => undefined).then(task);
    this.#queue = run;
    await run;
  }

  async #git(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync('git', [...GIT_CONFIG, ...args], {
      env: this.#env,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout.trim();
  }
}

/**
 * The parent environment minus any `GIT_*` variable (a test run from a git hook would otherwise
 * aim every command at the hook's repository), with system and user config switched off.
 */
export function gitEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('GIT_')) env[key] = value;
  }
  return {
    ...env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
  };
}
