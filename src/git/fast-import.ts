/**
 * @module
 * Writing a commit with `git fast-import`: its commands streamed to one git process, file
 * contents inline, so any number of files costs one process and no temporary files.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gitText, killGitGroup, spawnGit } from './git-command.ts';

/** One change of the commit's tree: a file's new bytes, or `null` to delete it. */
export interface TreeChange {
  path: string;
  body: Buffer | null;
}

/**
 * Writes one commit on `ref` (replacing it) with `changes` on top of `from` (a commit; none for
 * a root commit), and returns the commit id. The committer date is fixed, so the same changes
 * always give the same commit.
 */
export async function commitWithFastImport(
  gitDir: string,
  ref: string,
  message: string,
  changes: AsyncIterable<TreeChange> | Iterable<TreeChange>,
  from?: string,
): Promise<string> {
  const child = spawnGit([`--git-dir=${gitDir}`, 'fast-import', '--quiet', '--force']);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4096);
  });
  const exited = once(child, 'close') as Promise<[number | null]>;
  try {
    const commands = Readable.from(fastImportCommands(ref, message, changes, from));
    await pipeline(commands, child.stdin as NodeJS.WritableStream);
    const [code] = await exited;
    if (code !== 0) throw new Error(`git fast-import failed: ${stderr.trim().split('\n').pop()}`);
  } catch (err) {
    killGitGroup(child);
    throw err;
  }
  return gitText(gitDir, ['rev-parse', '--verify', `${ref}^{commit}`]);
}

async function* fastImportCommands(
  ref: string,
  message: string,
  changes: AsyncIterable<TreeChange> | Iterable<TreeChange>,
  from: string | undefined,
): AsyncGenerator<Buffer> {
  const text = Buffer.from(`${message}\n`);
  yield Buffer.from(
    `commit ${ref}\ncommitter cargo-cacher <cargo-cacher@localhost> 0 +0000\n` +
      `data ${text.length}\n`,
  );
  yield text;
  if (from !== undefined) yield Buffer.from(`from ${from}\n`);
  for await (const change of changes) {
    if (change.body === null) {
      yield Buffer.from(`D ${change.path}\n`);
    } else {
      yield Buffer.concat([
        Buffer.from(`M 100644 inline ${change.path}\ndata ${change.body.length}\n`),
        change.body,
        NEWLINE,
      ]);
    }
  }
  yield Buffer.from('\ndone\n');
}

const NEWLINE = Buffer.from('\n');
