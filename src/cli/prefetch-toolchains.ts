/**
 * @module
 * `cargo-cacher prefetch --toolchain <channel>`: one toolchain mirror pass over the channels
 * given, for CI images; the failures are printed one per line, as crate failures are.
 */
import type { Catalogue } from '../cache/catalogue.ts';
import type { Config } from '../config.ts';
import { ToolchainMirror } from '../jobs/toolchain-mirror.ts';
import type { AppLogger } from '../logger.ts';
import type { AppDeps } from '../server/app.ts';

/** Runs one pass over `channels` and prints what failed; resolves with the number of failures. */
export async function prefetchToolchains(
  deps: AppDeps,
  catalogue: Catalogue,
  config: Readonly<Config>,
  channels: string[],
  log: AppLogger,
): Promise<number> {
  if (!deps.toolchains) return 0;
  const { targets, profile } = config.rustup;
  const mirror = new ToolchainMirror({
    toolchains: deps.toolchains,
    catalogue,
    jobs: deps.jobs,
    channels,
    targets,
    profile,
    threads: config.threads,
    log,
    tty: process.stderr.isTTY === true,
    pin: false,
  });
  const job = await mirror.runOnce();
  await deps.toolchains.idle();
  const failed = job.report.filter((entry) => entry.status === 'failed');
  for (const entry of failed) {
    process.stderr.write(`failed: toolchain ${entry.name} ${entry.version}: ${entry.reason}\n`);
  }
  return failed.length + (job.state === 'failed' ? 1 : 0);
}
