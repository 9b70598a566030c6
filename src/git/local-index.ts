/**
 * @module
 * A git index built from files this instance holds, for an air-gapped cargo-cacher that has no
 * upstream git index to mirror: one root commit holding `config.json` and the given index
 * files, written with one `git fast-import` (plumbing only: no work tree, index file or user
 * identity), whatever the number of files. cargo and tools that read the git index then work
 * offline too.
 */
import { commitWithFastImport, type TreeChange } from './fast-import.ts';

/** One file of the tree: its path in the index and its bytes. */
export interface IndexTreeFile {
  path: string;
  body: Buffer;
}

/** Where the commit is written; the served ref is switched to it afterwards. */
const BUILD_REF = 'refs/cacher/local';

/**
 * Writes a root commit of `config.json` and `files` and returns its id. The commit date is fixed,
 * so the same files always give the same commit: clients fetch nothing after a restart.
 */
export function buildLocalIndexCommit(
  gitDir: string,
  config: Buffer,
  files: AsyncIterable<IndexTreeFile>,
): Promise<string> {
  return commitWithFastImport(
    gitDir,
    BUILD_REF,
    'Index of the crates this cargo-cacher holds',
    withConfig(config, files),
  );
}

async function* withConfig(
  config: Buffer,
  files: AsyncIterable<IndexTreeFile>,
): AsyncGenerator<TreeChange> {
  yield { path: 'config.json', body: config };
  yield* files;
}
