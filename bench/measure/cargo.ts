/**
 * @module
 * Measurement 3: real cargo, cold and warm, through cargo-cacher over plain HTTP, through
 * cargo-cacher over TLS with HTTP/2, and through nginx as a `proxy_cache` over plain HTTP, with
 * an upstream that adds latency to every request. The warm runs are repeated through a link with
 * latency between cargo and the cache (link.ts): on loopback a round trip costs nothing, so
 * only there does the number of round trips cargo waits for show.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCargoSandbox } from '../../test/helpers/cargo-sandbox.ts';
import { makeTestCertificates, type TestCertificates } from '../../test/helpers/tls-certs.ts';
import { startLink } from '../lib/link.ts';
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
  type Phase = 'cold' | 'warm' | 'linked';
  const times: Record<Setup, Record<Phase, number[]>> = {
    'proxy-http': { cold: [], warm: [], linked: [] },
    'proxy-tls': { cold: [], warm: [], linked: [] },
    nginx: { cold: [], warm: [], linked: [] },
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
          const link = await startLink(server.port, settings.linkRttMs);
          try {
            const linked = registry.replace(`:${server.port}/`, `:${link.port}/`);
            times[id].linked.push(await timeCargo(linked, rootDeps, ca, crateCount));
          } finally {
            await link.close();
          }
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    world.tree.setFault(undefined);
  }
  const rtt = settings.linkRttMs;
  const label = (phase: Phase, setup: Setup) => {
    const name = SETUPS.find((s) => s.id === setup)?.label;
    return phase === 'linked' ? `warm, ${rtt} ms RTT to the cache: ${name}` : `${phase}: ${name}`;
  };
  const goalOf = (phase: Phase, setup: Setup) => {
    if (phase === 'cold') return 1.2;
    return phase === 'linked' && setup === 'proxy-tls' ? 0.33 : undefined;
  };
  const rows: Row[] = [];
  for (const phase of ['cold', 'warm', 'linked'] as const) {
    for (const setup of ['proxy-http', 'proxy-tls'] as const) {
      const goal = goalOf(phase, setup);
      rows.push(
        compare(label(phase, setup), 's', times[setup][phase], times.nginx[phase], {
          baselineName: 'nginx proxy_cache',
          higherIsBetter: false,
          ...(goal !== undefined && { goal }),
        }),
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
      `Warm over a link: the same warm cache, with cargo reaching it through a TCP relay that adds ${rtt} ms of round-trip time (bench/lib/link.ts). On loopback a round trip costs microseconds, so warm times there are cargo's own work; the link shows what multiplexing saves.`,
      'Goals: warm over TLS+h2 ≥ 3× faster than nginx (ratio ≤ 0.33, judged over the link), cold within 1.2× of nginx.',
      'Over plain HTTP, cargo (curl) sends one request at a time on one connection, and opens its second connection (cargo allows two per host) only when a new download finds the first connection still receiving a body. nginx streams a cold crate as it arrives from upstream, so curl finds its connection busy and downloads two crates at a time. cargo-cacher verifies a cold crate whole before answering, then sends its headers and its body in two writes for the same effect (src/server/routes/crates.ts). Over TLS+h2 cargo multiplexes everything on one connection either way.',
      'nginx: a static config.json whose dl points at nginx, proxy_cache for /index/ (60 s, revalidated) and /dl/ (a year), proxy_cache_lock on.',
    ],
  };
}
