/**
 * @module
 * A copy of an index tree with some files' contents replaced or removed (the supply-chain policy
 * and the index of what is held apply to the served git index as to the sparse one). Every
 * index file is read with one `git cat-file --batch`; the replaced ones are written as blobs with
 * one `git hash-object`, and the tree is rebuilt through a temporary index file with
 * `read-tree`, `update-index --index-info` and `write-tree`: a handful of git processes whatever
 * the number of files, so a refresh of crates.io's index stays within seconds.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gitText } from './git-command.ts';
import { listIndexPaths, readTreeFiles } from './tree-reader.ts';

/** Returns the file's new contents, `undefined` to keep it as it is, `null` to remove it. */
export type FileFilter = (path: string, body: Buffer) => Buffer | undefined | null;

/** The id of a tree like `treeish`'s with the files `filter` replaces; the same tree when none. */
export async function filterTree(
  gitDir: string,
  treeish: string,
  filter: FileFilter,
): Promise<string> {
  const tree = await gitText(gitDir, ['rev-parse', '--verify', `${treeish}^{tree}`]);
  const replaced: { path: string; body: Buffer }[] = [];
  const removed: string[] = [];
  const paths = await listIndexPaths(gitDir, tree);
  for await (const file of readTreeFiles(gitDir, tree, paths)) {
    const body = filter(file.path, file.body);
    if (body === null) removed.push(file.path);
    else if (body !== undefined) replaced.push({ path: file.path, body });
  }
  if (replaced.length === 0 && removed.length === 0) return tree;
  const work = join(gitDir, `filter-${randomUUID()}`);
  try {
    await mkdir(work);
    const blobs = await writeBlobs(
      gitDir,
      work,
      replaced.map((file) => file.body),
    );
    const env = { GIT_INDEX_FILE: join(work, 'index') };
    await gitText(gitDir, ['read-tree', tree], { env });
    // Mode 0 removes a path from the index (git update-index --index-info).
    const entries =
      replaced.map((file, i) => `100644 ${blobs[i]}\t${file.path}\n`).join('') +
      removed.map((path) => `0 ${ZERO_ID}\t${path}\n`).join('');
    await gitText(gitDir, ['update-index', '--index-info'], { env, input: entries });
    return await gitText(gitDir, ['write-tree'], { env });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const ZERO_ID = '0'.repeat(40);

/** Writes each body as a blob with one `git hash-object` and returns their ids, in order. */
async function writeBlobs(gitDir: string, work: string, bodies: Buffer[]): Promise<string[]> {
  if (bodies.length === 0) return [];
  const files = bodies.map((_, i) => join(work, `blob-${i}`));
  // One at a time: thousands at once would run out of file descriptors.
  for (const [i, body] of bodies.entries()) await writeFile(files[i] as string, body);
  const ids = await gitText(gitDir, ['hash-object', '-w', '--no-filters', '--stdin-paths'], {
    input: `${files.join('\n')}\n`,
  });
  return ids.split('\n');
}
