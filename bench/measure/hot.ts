/**
 * @module
 * Measurements 1 and 2: hot (cached) crate downloads and hot sparse index files, plain and
 * conditional (304), from cargo-cacher and from nginx serving the same files from disk.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { indexPathOf } from '../../test/helpers/crate-pack.ts';
import { compare, type Section } from '../lib/report.ts';
import { type Server, startCacher, startNginx } from '../lib/servers.ts';
import type { BenchSettings } from '../lib/settings.ts';
import { proxyCratePath, type World } from '../lib/world.ts';
import { runWrk, type WrkResult } from '../lib/wrk.ts';

const MB = 1024 * 1024;

/** GETs `path` and returns status, ETag and body; fails unless the status is 200. */
async function get(server: Server, path: string) {
  const res = await request(`${server.url}${path}`);
  const body = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) {
    throw new Error(`GET ${server.url}${path}: ${res.statusCode} ${body.toString().slice(0, 300)}`);
  }
  return { etag: String(res.headers.etag ?? ''), body };
}

/** Runs wrk against both servers, alternating, `runs` times; fails on any error response. */
async function pairedWrk(
  settings: BenchSettings,
  dir: string,
  servers: { subject: Server; baseline: Server },
  target: (server: Server) => Pick<Parameters<typeof runWrk>[0], 'paths' | 'header'>,
  connections = settings.connections,
): Promise<{ subject: WrkResult[]; baseline: WrkResult[] }> {
  const results = { subject: [] as WrkResult[], baseline: [] as WrkResult[] };
  for (let i = 0; i < settings.runs; i++) {
    for (const side of ['subject', 'baseline'] as const) {
      const server = servers[side];
      const result = await runWrk({
        url: server.url,
        connections,
        seconds: settings.wrkSeconds,
        dir,
        ...target(server),
      });
      if (result.errors > 0) throw new Error(`wrk against ${server.url}: ${result.errors} errors`);
      results[side].push(result);
    }
  }
  return results;
}

/** 1. Hot crate downloads: throughput against nginx's sendfile from the same files. */
export async function measureHotCrates(
  settings: BenchSettings,
  world: World,
  dir: string,
): Promise<Section> {
  const storageDir = join(dir, 'store');
  const proxy = await startCacher({ storageDir, sparse: world.hot.indexUrl });
  let nginx: Server | undefined;
  try {
    const paths = world.hotSpecs.map(proxyCratePath);
    let bytes = 0;
    for (const path of paths) bytes += (await get(proxy, path)).body.length;
    nginx = await startNginx(join(dir, 'nginx'), { kind: 'static', storageDir, indexRoot: dir });
    for (const path of paths.slice(0, 3)) await get(nginx, path);
    const r = await pairedWrk(settings, dir, { subject: proxy, baseline: nginx }, () => ({
      paths,
    }));
    const options = { baselineName: 'nginx', higherIsBetter: true };
    return {
      title: '1. Hot crate downloads',
      rows: [
        compare(
          'throughput',
          'MB/s',
          r.subject.map((x) => x.bytesPerSec / MB),
          r.baseline.map((x) => x.bytesPerSec / MB),
          { ...options, goal: 0.8 },
        ),
        compare(
          'requests',
          'req/s',
          r.subject.map((x) => x.requestsPerSec),
          r.baseline.map((x) => x.requestsPerSec),
          options,
        ),
        compare(
          'p99 latency',
          'ms',
          r.subject.map((x) => x.p99Ms),
          r.baseline.map((x) => x.p99Ms),
          { baselineName: 'nginx', higherIsBetter: false },
        ),
      ],
      notes: [
        `${paths.length} cached \`.crate\` files, 10 KB to 2 MB (log-uniform), ${(bytes / MB).toFixed(1)} MB in all; wrk rotates over them with ${settings.connections} connections, plain HTTP/1.1.`,
        'nginx serves the same files from cargo-cacher’s storage directory (a regex location maps the download URL to the storage key), `sendfile on`.',
      ],
    };
  } finally {
    await nginx?.stop();
    await proxy.stop();
  }
}

/** 2. Hot sparse index files, plain and conditional, against nginx serving them as files. */
export async function measureHotIndex(
  settings: BenchSettings,
  world: World,
  dir: string,
): Promise<Section> {
  const proxy = await startCacher({ storageDir: join(dir, 'store'), sparse: world.tree.indexUrl });
  let nginx: Server | undefined;
  try {
    const names = [...new Set(world.treeInfo.specs.map((spec) => spec.name))];
    const paths = names.map((name) => `/index/${indexPathOf(name)}`);
    const proxyEtags: string[] = [];
    let bytes = 0;
    for (const path of paths) {
      const { etag, body } = await get(proxy, path);
      proxyEtags.push(etag);
      bytes += body.length;
      await mkdir(dirname(join(dir, 'www', path)), { recursive: true });
      await writeFile(join(dir, 'www', path), body);
    }
    nginx = await startNginx(join(dir, 'nginx'), {
      kind: 'static',
      storageDir: dir,
      indexRoot: join(dir, 'www'),
    });
    const nginxEtags: string[] = [];
    for (const path of paths) nginxEtags.push((await get(nginx, path)).etag);
    const servers = { subject: proxy, baseline: nginx };
    const plain = await pairedWrk(settings, dir, servers, () => ({ paths }));
    const conditional = await pairedWrk(settings, dir, servers, (server) => ({
      paths,
      header: {
        name: 'If-None-Match',
        values: server === proxy ? proxyEtags : nginxEtags,
      },
    }));
    const rows = [];
    for (const [label, r] of [
      ['GET 200', plain],
      ['conditional GET 304', conditional],
    ] as const) {
      rows.push(
        compare(
          `${label} requests`,
          'req/s',
          r.subject.map((x) => x.requestsPerSec),
          r.baseline.map((x) => x.requestsPerSec),
          { baselineName: 'nginx', higherIsBetter: true, goal: 0.6 },
        ),
        compare(
          `${label} p99 latency`,
          'ms',
          r.subject.map((x) => x.p99Ms),
          r.baseline.map((x) => x.p99Ms),
          { baselineName: 'nginx', higherIsBetter: false },
        ),
      );
    }
    return {
      title: '2. Hot sparse index files',
      rows,
      notes: [
        `${paths.length} index files of the generated tree, ${(bytes / 1024).toFixed(0)} KB in all (${Math.round(bytes / paths.length)} bytes on average); wrk with ${settings.connections} connections, no Accept-Encoding.`,
        'Conditional requests carry each server’s own ETag in If-None-Match, so every answer is a 304.',
      ],
    };
  } finally {
    await nginx?.stop();
    await proxy.stop();
  }
}
