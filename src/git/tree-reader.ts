/**
 * @module
 * Reading many index files out of the git mirror quickly: one `git ls-tree -r` for the names
 * and one `git cat-file --batch` for the contents, streamed, so a full crates.io index (a few
 * hundred thousand files) never needs a process per file.
 */
import { once } from 'node:events';
import { gitText, killGitGroup, runGit, spawnGit } from './git-command.ts';

/** One file of the index tree. */
export interface TreeFile {
  path: string;
  body: Buffer;
}

/** Paths of every index file in `rev` (config.json and dotfiles left out). */
export async function listIndexPaths(gitDir: string, rev: string): Promise<string[]> {
  const { stdout } = await runGit(gitDir, ['ls-tree', '-r', '-z', '--name-only', rev]);
  return stdout
    .toString('utf8')
    .split('\0')
    .filter(
      (path) =>
        path !== '' && path !== 'config.json' && !path.split('/').some((p) => p.startsWith('.')),
    );
}

/** Index files changed between two commits (added or modified; deletions left out). */
export async function changedIndexPaths(
  gitDir: string,
  from: string,
  to: string,
): Promise<string[]> {
  const names = await gitText(gitDir, ['diff', '--name-only', '--diff-filter=AMR', '-z', from, to]);
  return names
    .split('\0')
    .filter((path) => path !== '' && path !== 'config.json' && !path.startsWith('.'));
}

/** Streams the contents of `paths` at `rev`, in order; missing paths are skipped. */
export async function* readTreeFiles(
  gitDir: string,
  rev: string,
  paths: string[],
): AsyncIterable<TreeFile> {
  const child = spawnGit([`--git-dir=${gitDir}`, 'cat-file', '--batch']);
  const stdin = child.stdin as NonNullable<typeof child.stdin>;
  const stdout = child.stdout as NonNullable<typeof child.stdout>;
  child.stderr?.resume();
  // When the reader stops early the child is killed, and writing fails with EPIPE: expected,
  // not an unhandled error. A failure while reading to the end still surfaces below.
  stdin.on('error', () => undefined);
  const writing = writeRequests(stdin, rev, paths);
  writing.catch(() => undefined);
  let buffer: Buffer = Buffer.alloc(0);
  let index = 0;
  try {
    for await (const chunk of stdout) {
      buffer = buffer.length === 0 ? (chunk as Buffer) : Buffer.concat([buffer, chunk as Buffer]);
      for (let parsed = parseOne(buffer); parsed; parsed = parseOne(buffer)) {
        buffer = buffer.subarray(parsed.consumed);
        const path = paths[index++] as string;
        if (parsed.body) yield { path, body: parsed.body };
      }
    }
    await writing;
  } finally {
    killGitGroup(child);
  }
}

async function writeRequests(
  stdin: NodeJS.WritableStream,
  rev: string,
  paths: string[],
): Promise<void> {
  for (const path of paths) {
    if (!stdin.write(`${rev}:${path}\n`)) await once(stdin, 'drain');
  }
  stdin.end();
}

/**
 * Parses one `cat-file --batch` answer: `<id> blob <size>\n<body>\n`, or `<spec> missing\n`.
 */
function parseOne(buffer: Buffer): { consumed: number; body?: Buffer } | undefined {
  const newline = buffer.indexOf(0x0a);
  if (newline < 0) return undefined;
  const header = buffer.subarray(0, newline).toString('utf8');
  if (header.endsWith(' missing') || header.endsWith(' ambiguous'))
    return { consumed: newline + 1 };
  const size = Number(header.split(' ')[2]);
  const end = newline + 1 + size;
  if (buffer.length < end + 1) return undefined;
  return { consumed: end + 1, body: buffer.subarray(newline + 1, end) };
}
