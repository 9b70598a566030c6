/**
 * @module
 * The benchmark's data: cached-download crates of realistic sizes, a layered dependency tree
 * with many versions per crate (for cargo, the index and the mirror), and large crates for the
 * stampede and memory measurements. Each set is served by its own fake crates.io (the test
 * suite's, with real `.crate` files) on 127.0.0.1. Sizes are drawn from a seeded generator, so
 * every run of the benchmark uses the same data.
 */
import type { FakeCrateSpec } from '../../test/helpers/crate-pack.ts';
import { type FakeUpstream, startFakeUpstream } from '../../test/helpers/fake-upstream.ts';
import { prng } from '../../test/helpers/prng.ts';
import type { BenchSettings } from './settings.ts';

/** A small deterministic PRNG (the tests' mulberry32), so the data is the same every run. */
const random = prng;

/** Log-uniform between `min` and `max`: many small values, a few large, like crate sizes. */
function logUniform(next: () => number, min: number, max: number): number {
  return Math.round(Math.exp(Math.log(min) + next() * (Math.log(max) - Math.log(min))));
}

/** `count` crates of 10 KB to 2 MB, one version each, for the hot download measurement. */
export function hotCrateSpecs(count: number): FakeCrateSpec[] {
  const next = random(1);
  return Array.from({ length: count }, (_, i) => ({
    name: `hot-crate-${String(i).padStart(3, '0')}`,
    version: '1.0.0',
    padBytes: logUniform(next, 10 * 1024, 2 * 1024 * 1024),
  }));
}

/** The dependency tree: its crates (every version) and what the root project depends on. */
export interface Tree {
  specs: FakeCrateSpec[];
  /** Crates the generated project depends on directly (the top layer), with requirements. */
  rootDeps: Record<string, string>;
  crateCount: number;
}

const LAYERS = 6;

/**
 * `count` crates in {@link LAYERS} layers; each crate of a layer depends on three of the layer
 * below, so every crate is reachable from the top layer. Versions per crate are skewed (most
 * have a few, some have `maxVersions`) like crates.io's, which makes index files from a few
 * hundred bytes to tens of KB. Only the newest version of each crate gets a padded body (cargo
 * downloads only that one), 4 to 64 KB.
 */
export function treeSpecs(count: number, maxVersions: number): Tree {
  const next = random(2);
  const perLayer = Math.max(3, Math.floor(count / LAYERS));
  const name = (layer: number, i: number) => `tree-l${layer}-${String(i).padStart(3, '0')}`;
  const specs: FakeCrateSpec[] = [];
  for (let layer = 0; layer < LAYERS; layer++) {
    for (let i = 0; i < perLayer; i++) {
      const deps =
        layer === 0
          ? []
          : [0, 1, 2].map((k) => ({ name: name(layer - 1, (i + k) % perLayer), req: '1' }));
      const versions = logUniform(next, 1, maxVersions);
      for (let v = 0; v < versions; v++) {
        const newest = v === versions - 1;
        specs.push({
          name: name(layer, i),
          version: `1.${v}.0`,
          deps,
          ...(newest && { padBytes: logUniform(next, 4 * 1024, 64 * 1024) }),
        });
      }
    }
  }
  const rootDeps: Record<string, string> = {};
  for (let i = 0; i < perLayer; i++) rootDeps[name(LAYERS - 1, i)] = '1';
  return { specs, rootDeps, crateCount: perLayer * LAYERS };
}

/** The running fake upstreams and what they hold. */
export interface World {
  hot: FakeUpstream;
  hotSpecs: FakeCrateSpec[];
  tree: FakeUpstream;
  treeInfo: Tree;
  big: FakeUpstream;
  /** One fresh 5 MB crate per stampede run. */
  stampedeSpecs: FakeCrateSpec[];
  /** The crate for the streaming-memory measurement. */
  bigSpec: FakeCrateSpec;
  close(): Promise<void>;
}

/** Generates the data and starts the fake upstreams (only the sets the run needs). */
export async function buildWorld(settings: BenchSettings): Promise<World> {
  const wants = (name: string) => settings.only === undefined || settings.only.has(name);
  const hotSpecs = hotCrateSpecs(settings.hotCrates);
  const treeInfo = treeSpecs(settings.treeCrates, settings.maxVersions);
  const stampedeSpecs = Array.from({ length: settings.runs }, (_, i) => ({
    name: `stampede-${i}`,
    version: '1.0.0',
    padBytes: settings.stampedeCrateBytes,
  }));
  const bigSpec = { name: 'big-stream', version: '1.0.0', padBytes: settings.bigCrateBytes };
  const needsHot = wants('crates') || wants('memory');
  const needsTree = wants('index') || wants('cargo') || wants('mirror');
  const hot = await startFakeUpstream({ crates: needsHot ? hotSpecs : [] });
  const tree = await startFakeUpstream({ crates: needsTree ? treeInfo.specs : [] });
  const big = await startFakeUpstream({
    crates: [...(wants('stampede') ? stampedeSpecs : []), ...(wants('memory') ? [bigSpec] : [])],
  });
  return {
    hot,
    hotSpecs,
    tree,
    treeInfo,
    big,
    stampedeSpecs,
    bigSpec,
    async close() {
      await Promise.all([hot.close(), tree.close(), big.close()]);
    },
  };
}

/** The download path of a crate on the proxy (cargo's path for the served `dl`). */
export function proxyCratePath(spec: { name: string; version: string }): string {
  return `/api/v1/crates/${spec.name}/${spec.version}/download`;
}
