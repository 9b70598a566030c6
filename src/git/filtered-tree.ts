/**
 * @module
 * A copy of an index tree with some files' contents replaced or removed (the supply-chain policy
 * and the index of what is held apply to the served git index as to the sparse one). Every
 * index file is read with one `git cat-file --batch`, and the changes are written as one commit
 * on top with one `git fast-import` (contents inline, no temporary files): a handful of git
 * processes whatever the number of files, so a refresh of crates.io's index stays within
 * seconds.
 */
import { commitWithFastImport, type TreeChange } from './fast-import.ts';
import { gitText } from './git-command.ts';
import { listIndexPaths, readTreeFiles } from './tree-reader.ts';

/** Returns the file's new contents, `undefined` to keep it as it is, `null` to remove it. */
export type FileFilter = (path: string, body: Buffer) => Buffer | undefined | null;

/** Where the filtered tree's commit is written (only its tree is used). */
const FILTER_REF = 'refs/cacher/filtered';

/**
 * The id of a tree like that of commit `commit` with the files `filter` replaces or removes;
 * the same tree when it changes none.
 */
export async function filterTree(
  gitDir: string,
  commit: string,
  filter: FileFilter,
): Promise<string> {
  const tree = await gitText(gitDir, ['rev-parse', '--verify', `${commit}^{tree}`]);
  const changes: TreeChange[] = [];
  const paths = await listIndexPaths(gitDir, tree);
  for await (const file of readTreeFiles(gitDir, tree, paths)) {
    const body = filter(file.path, file.body);
    if (body !== undefined) changes.push({ path: file.path, body });
  }
  if (changes.length === 0) return tree;
  const filtered = await commitWithFastImport(
    gitDir,
    FILTER_REF,
    'The index files as served',
    changes,
    await gitText(gitDir, ['rev-parse', '--verify', `${commit}^{commit}`]),
  );
  return gitText(gitDir, ['rev-parse', '--verify', `${filtered}^{tree}`]);
}
