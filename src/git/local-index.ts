/**
 * @module
 * A git index built from files this instance holds, for an air-gapped cargo-cacher that has no
 * upstream git index to mirror: one root commit holding `config.json` and the given index
 * files, written with one `git fast-import` (plumbing only: no work tree, index file or user
 * identity), whatever the number of files. cargo and tools that read the git index then work
 * offline too.
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gitText, killGitGroup, spawnGit } from './git-command.ts';

/** One file of the tree: its path in the index and its bytes. */
export interface IndexTreeFile {
  path: string;
  body: Buffer;
}

/** Where fast-import writes; the served ref is switched to the commit afterwards. */
const BUILD_REF = 'refs/cacher/local';

/**
 * Writes a root commit of `config.json` and `files` and returns its id. The commit date is fixed,
 * so the same files always give the same commit: clients fetch nothing after a restart.
 */
export async function buildLocalIndexCommit(
  gitDir: string,
  config: Buffer,
  files: AsyncIterable<IndexTreeFile>,
): Promise<string> {
  const child = spawnGit([`--git-dir=${gitDir}`, 'fast-import', '--quiet', '--force']);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4096);
  });
  const exited = once(child, 'close') as Promise<[number | null]>;
  try {
    await pipeline(
      Readable.from(fastImportStream(config, files)),
      child.stdin as NodeJS.WritableStream,
    );
    const [code] = await exited;
    if (code !== 0) throw new Error(`git fast-import failed: ${stderr.trim().split('\n').pop()}`);
  } catch (err) {
    killGitGroup(child);
    throw err;
  }
  return gitText(gitDir, ['rev-parse', '--verify', `${BUILD_REF}^{commit}`]);
}

/** The fast-import commands: one commit, every file given inline. */
async function* fastImportStream(
  config: Buffer,
  files: AsyncIterable<IndexTreeFile>,
): AsyncGenerator<Buffer> {
  const message = Buffer.from('Index of the crates this cargo-cacher holds\n');
  yield Buffer.from(
    `commit ${BUILD_REF}\ncommitter cargo-cacher <cargo-cacher@localhost> 0 +0000\n` +
      `data ${message.length}\n`,
  );
  yield message;
  yield inlineFile('config.json', config);
  for await (const file of files) yield inlineFile(file.path, file.body);
  yield Buffer.from('\ndone\n');
}

function inlineFile(path: string, body: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`M 100644 inline ${path}\ndata ${body.length}\n`),
    body,
    NEWLINE,
  ]);
}

const NEWLINE = Buffer.from('\n');
