/**
 * @module
 * `npx tsx bench/toolchains.ts [megabytes] [clients]`: memory and throughput of the toolchain
 * cache on one large archive (default 500 MB, 10 clients). The archive is random bytes (the cache
 * checks its sha256, it never unpacks it), served with its `.sha256` by the fake dist server
 * from disk; cargo-cacher runs as a child process (`bin/cargo-cacher`, the built one: run
 * `npm run build` first) with `--rustup-upstream` pointing at it. Measured, on a fresh store:
 * - cold: the clients ask at once for the uncached archive (one upstream download, every client
 *   reading the spool file as it arrives, then the verified file stored);
 * - hot: the clients ask again, the archive served from storage;
 * with the proxy's peak resident memory (VmHWM) after each, against the 200 MB goal.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { request } from 'undici';
import { FakeDistTree } from '../test/helpers/fake-dist.ts';
import { startFakeDistServer } from '../test/helpers/fake-dist-server.ts';
import { killChildrenOnSignals, stopAllChildren } from './lib/procs.ts';
import { startCacher } from './lib/servers.ts';
import { memoryOf } from './lib/system.ts';

const MB = 1024 * 1024;
const GOAL_BYTES = 200 * MB;
const ARCHIVE = '/dist/2026-11-26/big-1.0.0-x86_64-unknown-linux-gnu.tar.xz';

/** Writes `bytes` random bytes to `file` a MiB at a time; resolves with their sha256. */
async function writeRandomFile(file: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let left = bytes; left > 0; left -= MB) {
    const chunk = randomBytes(Math.min(MB, left));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await finished(out);
  return hash.digest('hex');
}

/** GETs `url` and hashes the body without keeping it. */
async function fetchHashed(url: string): Promise<{ bytes: number; sha256: string; cache: string }> {
  const res = await request(url, { headersTimeout: 600_000, bodyTimeout: 600_000 });
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
  return { bytes, sha256: hash.digest('hex'), cache: String(res.headers['x-cache-status']) };
}

/** Waits until the proxy's catalogue holds the archive (it is stored once the download ends). */
async function storedBy(proxyUrl: string): Promise<void> {
  for (;;) {
    const res = await request(`${proxyUrl}/metrics`);
    const text = await res.body.text();
    if (/cargo_cacher_cache_objects\{area="toolchains"\} [1-9]/.test(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs `clients` concurrent downloads; returns the wall time and checks every body. */
async function round(url: string, clients: number, sha256: string) {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: clients }, () => fetchHashed(url)));
  const seconds = (performance.now() - started) / 1000;
  for (const result of results) {
    if (result.sha256 !== sha256) throw new Error('a client got other bytes');
  }
  const bytes = results.reduce((sum, result) => sum + result.bytes, 0);
  const statuses = [...new Set(results.map((result) => result.cache))].join('/');
  return { seconds, bytes, statuses };
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 500);
  const clients = Number(process.argv[3] ?? 10);
  killChildrenOnSignals();
  const dir = await mkdtemp(join(tmpdir(), 'cargo-cacher-bench-toolchains-'));
  try {
    const file = join(dir, 'archive.tar.xz');
    process.stdout.write(`writing a ${megabytes} MB archive… `);
    const sha256 = await writeRandomFile(file, megabytes * MB);
    process.stdout.write('done\n');
    const tree = new FakeDistTree();
    tree.files.set(`${ARCHIVE}.sha256`, Buffer.from(`${sha256}  ${ARCHIVE.split('/').at(-1)}\n`));
    const dist = await startFakeDistServer(tree);
    dist.serveFile(ARCHIVE, file, megabytes * MB);
    const proxy = await startCacher({
      storageDir: join(dir, 'store'),
      sparse: 'none',
      args: ['--no-git', '--rustup-upstream', dist.url],
    });
    try {
      const url = `${proxy.url}${ARCHIVE}`;
      const idle = (await memoryOf(proxy.child.pid)).rss;
      const cold = await round(url, clients, sha256);
      const coldPeak = (await memoryOf(proxy.child.pid)).hwm;
      await storedBy(proxy.url);
      const hot = await round(url, clients, sha256);
      const hotPeak = (await memoryOf(proxy.child.pid)).hwm;
      const rate = (r: { bytes: number; seconds: number }) => (r.bytes / MB / r.seconds).toFixed(0);
      const lines = [
        `| ${megabytes} MB archive, ${clients} clients | time | served | proxy peak RSS |`,
        '|---|---|---|---|',
        `| cold (${cold.statuses}), ${dist.count(ARCHIVE)} upstream download | ${cold.seconds.toFixed(1)} s | ${rate(cold)} MB/s | ${(coldPeak / MB).toFixed(0)} MB |`,
        `| hot (${hot.statuses}) | ${hot.seconds.toFixed(1)} s | ${rate(hot)} MB/s | ${(hotPeak / MB).toFixed(0)} MB |`,
        '',
        `idle RSS before the load ${(idle / MB).toFixed(0)} MB; goal: peak under ${GOAL_BYTES / MB} MB ` +
          `${Math.max(coldPeak, hotPeak) < GOAL_BYTES ? '✅' : '❌'}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      await proxy.stop();
      await dist.close();
    }
  } finally {
    await stopAllChildren();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
