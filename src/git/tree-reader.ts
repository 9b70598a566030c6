/**
 * @module
 * Reading many index files out of the git mirror quickly: one `git ls-tree -r` for the names
 * and one `git cat-file --batch` for the contents, streamed, so a full crates.io index (a few
 * hundred thousand files) never needs a process per file.
 */
import { once } from 'node:events';
import { crateNameFromIndexPath } from '../registry/crate-name.ts';
import { parseIndexFile } from '../registry/index-entry.ts';
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

/**
 * Versions a refresh took away: for each index file modified between two commits, the versions
 * the old file listed and the new one does not; for each deleted file, `'all'`. Crate names as
 * their index paths spell them (lowercase).
 */
export async function removedVersions(
  gitDir: string,
  from: string,
  to: string,
): Promise<Map<string, readonly string[] | 'all'>> {
  const removed = new Map<string, readonly string[] | 'all'>();
  const diff = await gitText(gitDir, ['diff', '--name-status', '--no-renames', '-z', from, to]);
  const fields = diff.split('\0');
  const modified: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [status, path] = [fields[i], fields[i + 1] as string];
    const name = crateNameFromIndexPath(path);
    if (name === undefined) continue;
    if (status === 'D') removed.set(name, 'all');
    if (status === 'M') modified.push(path);
  }
  if (modified.length === 0) return removed;
  const before = new Map<string, Buffer>();
  for await (const file of readTreeFiles(gitDir, from, modified)) before.set(file.path, file.body);
  for await (const file of readTreeFiles(gitDir, to, modified)) {
    const old = before.get(file.path);
    const name = crateNameFromIndexPath(file.path);
    if (!old || name === undefined) continue;
    const kept = new Set(parseIndexFile(file.body).map((entry) => entry.version));
    const gone = parseIndexFile(old)
      .map((entry) => entry.version)
      .filter((version) => !kept.has(version));
    if (gone.length > 0) removed.set(name, gone);
  }
  return removed;
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

/**
 * Streams the contents of `paths` at `rev`, in order; missing paths are skipped. The blobs are
 * asked for by id (one `ls-tree` first): `cat-file` resolving `rev:path` walks the trees for
 * every file, four times slower (5.6 s against 1.4 s for 28,000 index files).
 */
export async function* readTreeFiles(
  gitDir: string,
  rev: string,
  paths: string[],
): AsyncIterable<TreeFile> {
  const ids = await blobIds(gitDir, rev);
  const specs = paths.map((path) => ids.get(path) ?? `${rev}:${path}`);
  ids.clear();
  const child = spawnGit([`--git-dir=${gitDir}`, 'cat-file', '--batch']);
  const stdin = child.stdin as NonNullable<typeof child.stdin>;
  const stdout = child.stdout as NonNullable<typeof child.stdout>;
  child.stderr?.resume();
  // When the reader stops early the child is killed, and writing fails with EPIPE: expected,
  // not an unhandled error. A failure while reading to the end still surfaces below.
  stdin.on('error', () => undefined);
  const writing = writeRequests(stdin, specs);
  writing.catch(() => undefined);
  // Chunks are joined only once the next answer is whole: joining on every chunk copied a large
  // index file over and over (92 MB of index files took 6.6 s).
  let chunks: Buffer[] = [];
  let length = 0;
  let needed = 1;
  let index = 0;
  try {
    for await (const chunk of stdout) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length < needed) continue;
      let buffer = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
      for (let parsed = parseOne(buffer); parsed; parsed = parseOne(buffer)) {
        buffer = buffer.subarray(parsed.consumed);
        const path = paths[index++] as string;
        if (parsed.body) yield { path, body: parsed.body };
      }
      chunks = buffer.length > 0 ? [buffer] : [];
      length = buffer.length;
      needed = bytesNeeded(buffer);
    }
    await writing;
  } finally {
    killGitGroup(child);
  }
}

async function writeRequests(stdin: NodeJS.WritableStream, specs: string[]): Promise<void> {
  for (const spec of specs) {
    if (!stdin.write(`${spec}\n`)) await once(stdin, 'drain');
  }
  stdin.end();
}

/** Path → blob id of every file of `rev`'s tree. */
async function blobIds(gitDir: string, rev: string): Promise<Map<string, string>> {
  const { stdout } = await runGit(gitDir, ['ls-tree', '-r', '-z', '--full-tree', rev]);
  const ids = new Map<string, string>();
  for (const entry of stdout.toString('utf8').split('\0')) {
    // `<mode> blob <id>\t<path>` (ids of SHA-1 or SHA-256 repositories alike)
    const tab = entry.indexOf('\t');
    const [, type, id] = entry.slice(0, tab).split(' ');
    if (tab < 0 || type !== 'blob' || id === undefined) continue;
    ids.set(entry.slice(tab + 1), id);
  }
  return ids;
}

/** How many bytes the next answer needs in all (one more than held, while its header is partial). */
function bytesNeeded(buffer: Buffer): number {
  const newline = buffer.indexOf(0x0a);
  if (newline < 0) return buffer.length + 1;
  const header = buffer.subarray(0, newline).toString('utf8');
  if (header.endsWith(' missing') || header.endsWith(' ambiguous')) return newline + 1;
  return newline + 1 + Number(header.split(' ')[2]) + 1;
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
