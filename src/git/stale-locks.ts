/**
 * @module
 * What a killed git leaves in a repository: `*.lock` files (a ref, `packed-refs`, `config`,
 * `shallow`) and half-written packs (`objects/pack/tmp_*`). git refuses to update a ref whose
 * lock exists ("Unable to create '….lock': File exists. Another git process seems to be
 * running"), so one crash during a refresh would block every later refresh. The mirror is the
 * only writer of its repository, so at startup any such file is stale and is removed.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Removes stale lock files and temporary packs below `gitDir`; returns how many. */
export async function removeStaleGitLocks(gitDir: string): Promise<number> {
  let removed = 0;
  const walk = async (dir: string, top: boolean): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      // Loose objects are written by rename and never half-visible: no need to walk them.
      if (top && entry.name === 'objects') {
        removed += await removeTemporaryPacks(path);
      } else if (entry.isDirectory()) {
        await walk(path, false);
      } else if (entry.name.endsWith('.lock')) {
        await rm(path, { force: true });
        removed += 1;
      }
    }
  };
  await walk(gitDir, true);
  return removed;
}

async function removeTemporaryPacks(objectsDir: string): Promise<number> {
  let removed = 0;
  for (const [dir, prefix] of [
    [join(objectsDir, 'pack'), 'tmp_'],
    [objectsDir, 'incoming-'],
  ] as const) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((candidate) => candidate.startsWith(prefix))) {
      await rm(join(dir, name), { force: true, recursive: true });
      removed += 1;
    }
  }
  return removed;
}
