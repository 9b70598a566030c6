/**
 * @module
 * Measurement 4: a stampede. Many clients ask at once for the same crate that nobody has
 * cached yet; the upstream must see one download, and every client must get the whole crate.
 * The baseline is nginx's proxy_cache with `proxy_cache_lock on`, its single-flight setting.
 */
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { compare, type Section } from '../lib/report.ts';
import { type Server, startCacher, startNginx } from '../lib/servers.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { proxyCratePath, type World } from '../lib/world.ts';

/** Fires `clients` requests at once; returns ms until the last body byte arrived. */
async function stampede(url: string, clients: number, expectedBytes: number): Promise<number> {
  const agent = new Agent({ connections: clients, pipelining: 1 });
  try {
    const start = performance.now();
    const sizes = await Promise.all(
      Array.from({ length: clients }, async () => {
        const res = await request(url, {
          dispatcher: agent,
          headersTimeout: 120_000,
          bodyTimeout: 120_000,
        });
        let size = 0;
        for await (const chunk of res.body) size += (chunk as Buffer).length;
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
        return size;
      }),
    );
    const elapsed = performance.now() - start;
    const short = sizes.filter((size) => size !== expectedBytes).length;
    if (short > 0) throw new Error(`${short} of ${clients} responses were not the whole crate`);
    return elapsed;
  } finally {
    await agent.close();
  }
}

/** 4. Single flight under a stampede. */
export async function measureStampede(
  settings: BenchSettings,
  world: World,
  dir: string,
): Promise<Section> {
  const { big } = world;
  const ms = { proxy: [] as number[], nginx: [] as number[] };
  const fetches = { proxy: [] as number[], nginx: [] as number[] };
  big.setFault({ kind: 'slow', delayMs: settings.upstreamLatencyMs });
  let proxy: Server | undefined;
  let nginx: Server | undefined;
  try {
    proxy = await startCacher({ storageDir: join(dir, 'store'), sparse: big.indexUrl });
    nginx = await startNginx(join(dir, 'nginx'), { kind: 'cache', upstream: big.url });
    for (let i = 0; i < settings.runs; i++) {
      const spec = world.stampedeSpecs[i];
      if (!spec) throw new Error('not enough stampede crates');
      const bytes = big.crate(spec.name, spec.version).bytes.length;
      const upstreamPath = `/dl/${spec.name}/${spec.version}/download`;
      for (const [side, server, path] of [
        ['proxy', proxy, proxyCratePath(spec)],
        ['nginx', nginx, upstreamPath],
      ] as const) {
        big.resetLog();
        ms[side].push(await stampede(`${server.url}${path}`, settings.stampedeClients, bytes));
        fetches[side].push(big.count(upstreamPath));
      }
    }
  } finally {
    big.setFault(undefined);
    await nginx?.stop();
    await proxy?.stop();
  }
  const single = fetches.proxy.every((n) => n === 1);
  return {
    title: '4. Single flight under a stampede',
    rows: [
      compare('time to last byte, all clients', 'ms', ms.proxy, ms.nginx, {
        baselineName: 'nginx proxy_cache_lock',
        higherIsBetter: false,
      }),
    ],
    notes: [
      `${settings.stampedeClients} concurrent requests for one uncached ${(settings.stampedeCrateBytes / 1024 / 1024).toFixed(0)} MB crate (a new crate each run); the upstream adds ${settings.upstreamLatencyMs} ms.`,
      `Upstream downloads per stampede: cargo-cacher ${fetches.proxy.join(', ')} ${single ? '(must be 1 ✅)' : '(must be 1 ❌)'}; nginx ${fetches.nginx.join(', ')}.`,
      'cargo-cacher also fetches the crate’s index file first (to verify the sha256); nginx does not verify anything.',
    ],
  };
}
