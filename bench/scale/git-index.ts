/**
 * @module
 * The bare git index of a synthetic registry, made in one `git fast-import` run from the stream
 * the generator wrote (one commit on `master` holding every index file and `config.json`).
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { gitEnv } from '../../test/helpers/fake-git-index.ts';
import { run } from '../lib/procs.ts';

/** Creates `bare` and imports `streamPath` into it. */
export async function buildBareIndex(streamPath: string, bare: string): Promise<void> {
  const env = gitEnv(join(bare, '..', 'git-home'));
  await run('git', ['init', '-q', '--bare', bare], { env });
  await run('git', ['--git-dir', bare, 'symbolic-ref', 'HEAD', 'refs/heads/master'], { env });
  const input = openSync(streamPath, 'r');
  try {
    await run('git', ['--git-dir', bare, 'fast-import', '--quiet', '--done'], {
      env,
      stdio: [input, 'pipe', 'pipe'],
      timeoutMs: 600_000,
    });
  } finally {
    closeSync(input);
  }
}
