/**
 * @module
 * Profiles cargo-cacher's hot paths: starts the built proxy with `--cpu-prof`, warms it, loads
 * it with wrk, stops it, and prints the functions with the most self time. Usage:
 * `npx tsx bench/profile.ts crates|index|conditional [seconds]` (after `npm run build`).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { indexPathOf } from '../test/helpers/crate-pack.ts';
import { killAllChildren, killChildrenOnSignals } from './lib/procs.ts';
import { startCacher } from './lib/servers.ts';
import { loadSettings } from './lib/settings.ts';
import { buildWorld, proxyCratePath } from './lib/world.ts';
import { runWrk } from './lib/wrk.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/** Self time per function, as a share of all samples. */
function topFunctions(profile: Profile, count: number): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, number>();
  for (const id of profile.samples) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const file = frame.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1');
    const key = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
    totals.set(key, (totals.get(key) ?? 0) + 1);
  }
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, n]) => `${((100 * n) / profile.samples.length).toFixed(1).padStart(5)}%  ${key}`);
}

async function main(): Promise<void> {
  killChildrenOnSignals();
  const scenario = process.argv[2] ?? 'index';
  const seconds = Number(process.argv[3] ?? 5);
  const settings = { ...loadSettings(), quick: true, hotCrates: 30, treeCrates: 120 };
  const dir = await mkdtemp(join(tmpdir(), 'cargo-cacher-profile-'));
  const world = await buildWorld({ ...settings, only: new Set(['crates', 'index']) });
  try {
    const upstream = scenario === 'crates' ? world.hot : world.tree;
    const proxy = await startCacher({
      storageDir: join(dir, 'store'),
      sparse: upstream.indexUrl,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'prof')}`],
    });
    const paths =
      scenario === 'crates'
        ? world.hotSpecs.map(proxyCratePath)
        : [...new Set(world.treeInfo.specs.map((s) => `/index/${indexPathOf(s.name)}`))];
    const etags: string[] = [];
    for (const path of paths) {
      const res = await request(`${proxy.url}${path}`);
      await res.body.arrayBuffer();
      etags.push(String(res.headers.etag));
    }
    const header =
      scenario === 'conditional' ? { name: 'If-None-Match', values: etags } : undefined;
    const result = await runWrk({
      url: proxy.url,
      paths,
      connections: 64,
      seconds,
      dir,
      ...(header && { header }),
    });
    await proxy.stop();
    console.log(`${scenario}: ${result.requestsPerSec.toFixed(0)} req/s, p99 ${result.p99Ms} ms`);
    const [file] = await readdir(join(dir, 'prof'));
    const profile = JSON.parse(await readFile(join(dir, 'prof', file ?? ''), 'utf8')) as Profile;
    for (const line of topFunctions(profile, 30)) console.log(line);
  } finally {
    await world.close();
    killAllChildren();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
