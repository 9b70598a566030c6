/**
 * @module
 * Starting cargo-cacher for the restart measurements. Unlike `startCacher` this returns right
 * after the spawn, so the caller can time spawn → first answer itself (polling every 10 ms
 * rather than waiting for the port in 50 ms steps), and it tolerates a slow start: at 200,000
 * versions a startup that walks the store may take longer than `startCacher`'s 30 s.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, stopChild } from '../lib/procs.ts';
import type { Server } from '../lib/servers.ts';
import { freePort } from '../lib/system.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'cargo-cacher');

/** Spawns the compiled CLI (same flags as `startCacher`) and returns without waiting. */
export async function spawnCacher(
  storageDir: string,
  sparse: string,
  args: string[],
): Promise<Server> {
  const port = await freePort();
  const argv = ['-p', String(port), '--listen', '127.0.0.1', '-i', storageDir];
  argv.push('--max-connections-per-ip', '100000', '-s', sparse, ...args);
  const child = startChild(BIN, argv, {
    cwd: REPO,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return { child, port, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child, 15_000) };
}

/** The path of the compiled CLI's launcher (for `gc`). */
export const CACHER_BIN = BIN;
