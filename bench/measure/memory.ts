/**
 * @module
 * Measurement 5: peak resident memory (VmHWM) of the cargo-cacher process while it serves 256
 * concurrent downloads, and while it streams one very large crate (fetched from upstream, then
 * served): it must stream, never hold a crate in memory. The baseline is the same process's
 * resident memory when idle, measured just before the load.
 */
import { join } from 'node:path';
import { request } from 'undici';
import { compare, type Section } from '../lib/report.ts';
import { type Server, startCacher } from '../lib/servers.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { memoryOf } from '../lib/system.ts';
import { proxyCratePath, type World } from '../lib/world.ts';
import { runWrk } from '../lib/wrk.ts';

const MB = 1024 * 1024;
const GOAL_BYTES = 200 * MB;

/** GETs a URL and counts the body without keeping it. */
async function drain(url: string): Promise<number> {
  const res = await request(url, { headersTimeout: 300_000, bodyTimeout: 300_000 });
  let size = 0;
  for await (const chunk of res.body) size += (chunk as Buffer).length;
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
  return size;
}

/** Starts a fresh proxy, runs `load`, and returns idle RSS and peak RSS (bytes). */
async function peakDuring(
  dir: string,
  sparse: string,
  prepare: (proxy: Server) => Promise<void>,
  load: (proxy: Server) => Promise<void>,
): Promise<{ idle: number; peak: number }> {
  const proxy = await startCacher({ storageDir: join(dir, 'store'), sparse });
  try {
    await prepare(proxy);
    const idle = (await memoryOf(proxy.child.pid)).rss;
    await load(proxy);
    const peak = (await memoryOf(proxy.child.pid)).hwm;
    return { idle, peak };
  } finally {
    await proxy.stop();
  }
}

/** 5. Peak RSS under concurrent downloads and while streaming a large crate. */
export async function measureMemory(
  settings: BenchSettings,
  world: World,
  dir: string,
): Promise<Section> {
  const paths = world.hotSpecs.map(proxyCratePath);
  const big = world.big.crate(world.bigSpec.name, world.bigSpec.version);
  const concurrent = { idle: [] as number[], peak: [] as number[] };
  const streaming = { idle: [] as number[], peak: [] as number[] };
  for (let i = 0; i < settings.runs; i++) {
    const a = await peakDuring(
      join(dir, `concurrent-${i}`),
      world.hot.indexUrl,
      async (proxy) => {
        for (const path of paths) await drain(`${proxy.url}${path}`);
      },
      async (proxy) => {
        const result = await runWrk({
          url: proxy.url,
          paths,
          connections: settings.memoryConnections,
          seconds: settings.wrkSeconds,
          dir,
        });
        if (result.errors > 0) throw new Error(`wrk: ${result.errors} errors`);
      },
    );
    concurrent.idle.push(a.idle / MB);
    concurrent.peak.push(a.peak / MB);
    const b = await peakDuring(
      join(dir, `streaming-${i}`),
      world.big.indexUrl,
      async () => {},
      async (proxy) => {
        // First a miss (upstream → storage → client), then a hit (storage → client).
        for (let k = 0; k < 2; k++) {
          const size = await drain(`${proxy.url}${proxyCratePath(big)}`);
          if (size !== big.bytes.length) throw new Error(`big crate: got ${size} bytes`);
        }
      },
    );
    streaming.idle.push(b.idle / MB);
    streaming.peak.push(b.peak / MB);
  }
  const options = { baselineName: 'idle RSS', higherIsBetter: false };
  const worst = Math.max(...concurrent.peak, ...streaming.peak);
  return {
    title: '5. Memory',
    rows: [
      compare(
        `peak RSS, ${settings.memoryConnections} concurrent downloads`,
        'MB',
        concurrent.peak,
        concurrent.idle,
        options,
      ),
      compare(
        `peak RSS, one ${(big.bytes.length / MB).toFixed(0)} MB crate (miss, then hit)`,
        'MB',
        streaming.peak,
        streaming.idle,
        options,
      ),
    ],
    notes: [
      `Peak = VmHWM of a fresh cargo-cacher process after the load; idle = its VmRSS just before. Goal: peak < ${GOAL_BYTES / MB} MB: worst run ${worst.toFixed(0)} MB ${worst < GOAL_BYTES / MB ? '✅' : '❌'}.`,
      `Concurrent: wrk with ${settings.memoryConnections} connections over the ${paths.length} hot crates for ${settings.wrkSeconds} s.`,
    ],
  };
}
