/**
 * @module
 * Throw-away directories for tests, always below the OS temp dir so a failed cleanup never
 * litters the repository.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Creates a fresh empty directory below `os.tmpdir()` whose name starts with `prefix`. */
export async function makeTempDir(prefix: string): Promise<string> {
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '-');
  return mkdtemp(join(tmpdir(), `cargo-cacher-${safe}-`));
}

/**
 * Removes a directory made by {@link makeTempDir}, recursively. Missing directories are fine, so
 * it can run in `after` hooks even when the test failed before creating anything. The retries
 * cover processes (cargo, git) that are still letting go of files when the hook runs.
 */
export async function removeTempDir(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
}
