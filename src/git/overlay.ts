/**
 * @module
 * The one commit cargo-cacher adds on top of upstream's HEAD: the same tree with `config.json`
 * rewritten so `dl` and `api` point at this proxy (registry-config.ts), and, under a supply-chain
 * policy, the withheld versions' lines marked yanked or left out. Built with plumbing only, so
 * no work tree, index file or user identity is involved.
 */
import {
  DOWNLOAD_ROUTE_BASE,
  parseRegistryConfig,
  rewriteRegistryConfig,
} from '../registry/registry-config.ts';
import { type FileFilter, filterTree } from './filtered-tree.ts';
import { gitText, runGit } from './git-command.ts';

/** The ref upstream's HEAD is fetched into. */
export const UPSTREAM_REF = 'refs/cacher/upstream';
/** The ref served to clients; HEAD is a symref to it. */
export const SERVED_REF = 'refs/heads/master';

/**
 * Builds the overlay commit for the current {@link UPSTREAM_REF} and returns its id. The commit
 * dates are upstream's, so the same upstream state always gives the same commit id and clients
 * fetch nothing new after a restart.
 */
export async function buildOverlayCommit(
  gitDir: string,
  publicUrl: string,
  filter?: FileFilter,
): Promise<string> {
  const upstreamHead = await gitText(gitDir, ['rev-parse', '--verify', `${UPSTREAM_REF}^{commit}`]);
  const config = await readUpstreamConfig(gitDir);
  const served = `${JSON.stringify(rewriteRegistryConfig(config, publicUrl), null, 2)}\n`;
  const blob = await gitText(gitDir, ['hash-object', '-w', '--stdin'], { input: served });
  // The supply-chain policy's view of the index files, when one is in force.
  const base = filter ? await filterTree(gitDir, upstreamHead, filter) : upstreamHead;
  const tree = await replaceRootEntry(gitDir, base, 'config.json', blob);
  const date = await gitText(gitDir, ['log', '-1', '--format=%ct', upstreamHead]);
  const dateEnv = { GIT_AUTHOR_DATE: `${date} +0000`, GIT_COMMITTER_DATE: `${date} +0000` };
  return gitText(
    gitDir,
    ['commit-tree', tree, '-p', upstreamHead, '-m', `Serve downloads through ${publicUrl}`],
    { env: dateEnv },
  );
}

async function readUpstreamConfig(gitDir: string) {
  let body: Buffer;
  try {
    body = (await runGit(gitDir, ['cat-file', 'blob', `${UPSTREAM_REF}:config.json`])).stdout;
  } catch {
    throw new Error('upstream git index has no config.json at the root of HEAD');
  }
  try {
    return parseRegistryConfig(body);
  } catch (err) {
    throw new Error(`upstream git index config.json is malformed: ${(err as Error).message}`);
  }
}

/**
 * The `config.json` of an index built from held files (no upstream one to rewrite): downloads
 * through this proxy, and nothing else (an air-gapped cache has no upstream API to name).
 */
export function localIndexConfig(publicUrl: string): Buffer {
  return Buffer.from(`${JSON.stringify({ dl: publicUrl + DOWNLOAD_ROUTE_BASE }, null, 2)}\n`);
}

/** Writes a copy of the root tree of `treeish` with one blob entry replaced. */
async function replaceRootEntry(
  gitDir: string,
  treeish: string,
  name: string,
  blob: string,
): Promise<string> {
  const listing = (await runGit(gitDir, ['ls-tree', '-z', treeish])).stdout.toString('utf8');
  const entries = listing
    .split('\0')
    .filter((entry) => entry !== '' && !entry.endsWith(`\t${name}`));
  entries.push(`100644 blob ${blob}\t${name}`);
  return gitText(gitDir, ['mktree', '-z'], { input: `${entries.join('\0')}\0` });
}

/** The commit the served ref points at, or `undefined` before the first overlay. */
export async function servedCommit(gitDir: string): Promise<string | undefined> {
  try {
    return await gitText(gitDir, ['rev-parse', '--verify', '--quiet', SERVED_REF]);
  } catch {
    return undefined;
  }
}
