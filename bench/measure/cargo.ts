/**
 * @module
 * Measurement 3: real cargo, cold and warm, through cargo-cacher over plain HTTP, through
 * cargo-cacher over TLS with HTTP/2, and through nginx as a `proxy_cache` over plain HTTP, with
 * an upstream that adds latency to every request.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCargoSandbox } from '../../test/helpers/cargo-sandbox.ts';
import { makeTestCertificates, type TestCertificates } from '../../test/helpers/tls-certs.ts';
import { compare, type Row, type Section } from '../lib/report.ts';
import { type Server, startCacher, startNginx } from '../lib/servers.ts';
import type { BenchSettings } from '../lib/settings.ts';
import type { World } from '../lib/world.ts';

type Setup = 'proxy-http' | 'proxy-tls' | 'nginx';

const SETUPS: { id: Setup; label: string }[] = [
  { id: 'proxy-http', label: 'cargo-cacher, plain HTTP' },
  { id: 'proxy-tls', label: 'cargo-cacher, TLS + HTTP/2' },
  { id: 'nginx', label: 'nginx proxy_cache, plain HTTP' },
];

async function startSetup(
  setup: Setup,
  world: World,
  dir: string,
  certs: TestCertificates,
): Promise<Server> {
  if (setup === 'nginx') return startNginx(dir, { kind: 'cache', upstream: world.tree.url });
  return startCacher({
    storageDir: join(dir, 'store'),
    sparse: world.tree.indexUrl,
    ...(setup === 'proxy-tls' && { tls: certs }),
  });
}

/**
 * `cargo generate-lockfile && cargo fetch` in a fresh project and CARGO_HOME; returns seconds.
 * cargo's defaults stay (multiplexing on), which is what a user gets.
 */
async function timeCargo(
  registry: string,
  deps: Record<string, string>,
  caFile: string | undefined,
  expectedCrates: number,
): Promise<number> {
  const box = await makeCargoSandbox({ registry, deps });
  try {
    delete box.env.CARGO_HTTP_MULTIPLEXING;
    if (caFile) box.env.CARGO_HTTP_CAINFO = caFile;
    const start = performance.now();
    await box.cargo(['generate-lockfile']);
    await box.cargo(['fetch']);
    const seconds = (performance.now() - start) / 1000;
    const cached = await readdir(join(box.cargoHome, 'registry', 'cache'), { recursive: true });
    const count = cached.filter((name) => name.endsWith('.crate')).length;
    if (count !== expectedCrates) {
      throw new Error(`cargo fetched ${count} crates through ${registry}, not ${expectedCrates}`);
    }
    return seconds;
  } finally {
    await box.remove();
  }
}

/** 3. Real cargo, cold and warm, three ways. */
export async function measureCargo(
  settings: BenchSettings,
  world: World,
  dir: string,
): Promise<Section> {
  const certs = await makeTestCertificates(dir);
  const { rootDeps, crateCount } = world.treeInfo;
  const times: Record<Setup, { cold: number[]; warm: number[] }> = {
    'proxy-http': { cold: [], warm: [] },
    'proxy-tls': { cold: [], warm: [] },
    nginx: { cold: [], warm: [] },
  };
  const upstreamRequests: Record<Setup, number[]> = {
    'proxy-http': [],
    'proxy-tls': [],
    nginx: [],
  };
  world.tree.setFault({ kind: 'slow', delayMs: settings.upstreamLatencyMs });
  try {
    for (let i = 0; i < settings.runs; i++) {
      for (const { id } of SETUPS) {
        const server = await startSetup(id, world, join(dir, `${id}-${i}`), certs);
        try {
          const registry = `sparse+${server.url}/index/`;
          const ca = id === 'proxy-tls' ? certs.caFile : undefined;
          world.tree.resetLog();
          times[id].cold.push(await timeCargo(registry, rootDeps, ca, crateCount));
          upstreamRequests[id].push(world.tree.requests.length);
          times[id].warm.push(await timeCargo(registry, rootDeps, ca, crateCount));
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    world.tree.setFault(undefined);
  }
  const rows: Row[] = [];
  for (const phase of ['cold', 'warm'] as const) {
    for (const setup of ['proxy-http', 'proxy-tls'] as const) {
      const goal = phase === 'cold' ? 1.2 : setup === 'proxy-tls' ? 0.33 : undefined;
      rows.push(
        compare(
          `${phase}: ${SETUPS.find((s) => s.id === setup)?.label}`,
          's',
          times[setup][phase],
          times.nginx[phase],
          {
            baselineName: 'nginx proxy_cache',
            higherIsBetter: false,
            ...(goal !== undefined && { goal }),
          },
        ),
      );
    }
  }
  const mean = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);
  return {
    title: '3. Real cargo: generate-lockfile + fetch, cold and warm',
    rows,
    notes: [
      `A project depending on a generated tree of ${crateCount} crates in 6 layers (${world.treeInfo.specs.length} versions in the index); cargo resolves and downloads all ${crateCount}. Fresh CARGO_HOME for every run, cargo's default settings (multiplexing on).`,
      `The upstream adds ${settings.upstreamLatencyMs} ms to every request. Cold: a new, empty cache; warm: the same cache right after.`,
      `Upstream requests per cold run: cargo-cacher ${mean(upstreamRequests['proxy-http'])} (HTTP) / ${mean(upstreamRequests['proxy-tls'])} (TLS), nginx ${mean(upstreamRequests.nginx)}.`,
      'Goals: warm over TLS+h2 ≥ 3× faster than nginx (ratio ≤ 0.33), cold within 1.2× of nginx. Over plain HTTP cargo sends one request at a time whatever the server.',
      'nginx: a static config.json whose dl points at nginx, proxy_cache for /index/ (60 s, revalidated) and /dl/ (a year), proxy_cache_lock on.',
    ],
  };
}
