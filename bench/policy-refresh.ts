/**
 * @module
 * `npx tsx bench/policy-refresh.ts [versions]`: the cost of building the served git index under
 * a cooldown, on the scale benchmark's synthetic registry (generate it first with
 * `npm run bench -- scale`; default 200,000 versions). The clock is set to the registry's newest
 * `pubtime`, so a 3-day cooldown withholds what a real one would withhold at a refresh; the
 * overlay is built on a copy of the registry's bare git index, once without and once with the
 * policy, and both are timed.
 */
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gitText } from '../src/git/git-command.ts';
import { buildOverlayCommit, UPSTREAM_REF } from '../src/git/overlay.ts';
import { crateNameFromIndexPath } from '../src/registry/crate-name.ts';
import { filterIndexFile, type Policy } from '../src/registry/policy.ts';
import { parsePubtime } from '../src/registry/pubtime.ts';

const DAY = 86_400_000;

async function newestPubtime(indexDir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(indexDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const text = await readFile(join(entry.parentPath, entry.name), 'utf8');
    for (const match of text.matchAll(/"pubtime":"([^"]+)"/g)) {
      newest = Math.max(newest, parsePubtime(match[1]) ?? 0);
    }
  }
  return newest;
}

async function main(): Promise<void> {
  const size = process.argv[2] ?? '200000';
  const registry = join(homedir(), '.cache', 'cargo-cacher', 'bench-registry', `${size}-v1`);
  const now = await newestPubtime(join(registry, 'www', 'index'));
  const policy: Policy = { minPublishAgeMs: 3 * DAY, deny: [], allowYoung: [] };
  const work = await mkdtemp(join(tmpdir(), 'policy-refresh-'));
  try {
    const gitDir = join(work, 'index.git');
    await cp(join(registry, 'index.git'), gitDir, { recursive: true });
    await gitText(gitDir, ['update-ref', UPSTREAM_REF, 'HEAD']);
    let started = performance.now();
    await buildOverlayCommit(gitDir, 'http://127.0.0.1:8080');
    const plainMs = performance.now() - started;
    let files = 0;
    let withheld = 0;
    started = performance.now();
    await buildOverlayCommit(gitDir, 'http://127.0.0.1:8080', (path, body) => {
      if (crateNameFromIndexPath(path) === undefined) return undefined;
      const filtered = filterIndexFile(body, policy, now);
      if (filtered.body === body) return undefined;
      files += 1;
      withheld += filtered.withheld.length;
      return filtered.body;
    });
    const policyMs = performance.now() - started;
    process.stdout.write(
      `${size} versions: overlay ${plainMs.toFixed(0)} ms without a policy, ` +
        `${policyMs.toFixed(0)} ms with a 3-day cooldown (${withheld} versions withheld ` +
        `in ${files} files)\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
