/**
 * @module
 * Measurement 6: full mirror throughput (`-a -g <repo> -t N`) against an upstream with added
 * latency, in versions per second. The baseline is a plain download script with the same
 * concurrency: N workers that fetch, check the sha256 and write each `.crate` to disk.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { compare, type Row, type Section } from '../lib/report.ts';
import { startCacher } from '../lib/servers.ts';
import type { BenchSettings } from '../lib/settings.ts';
import type { World } from '../lib/world.ts';

interface MirrorJob {
  kind: string;
  state: string;
  startedAt: string;
  finishedAt?: string;
  counts: { total: number; fetched: number; failed: number };
}

/** Runs the CLI with `-a` until its mirror job ends; returns versions per second. */
async function mirrorOnce(world: World, bare: string, threads: number, dir: string) {
  const proxy = await startCacher({
    storageDir: join(dir, 'store'),
    sparse: world.tree.indexUrl,
    args: ['-a', '-g', bare, '-t', String(threads)],
  });
  try {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const res = await request(`${proxy.url}/api/v1/jobs`);
      const { jobs } = (await res.body.json()) as { jobs: MirrorJob[] };
      const job = jobs.find((j) => j.kind === 'mirror' && j.state !== 'running');
      if (job) {
        if (job.state !== 'done' || job.counts.failed > 0 || job.finishedAt === undefined) {
          throw new Error(`mirror job ended ${job.state}: ${JSON.stringify(job.counts)}`);
        }
        const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
        return { perSecond: job.counts.fetched / seconds, fetched: job.counts.fetched };
      }
      if (Date.now() > deadline) throw new Error('the mirror did not finish within 10 minutes');
      await delay(100);
    }
  } finally {
    await proxy.stop();
  }
}

/** The baseline: `threads` workers downloading every version, verified, to files. */
async function scriptOnce(world: World, threads: number, dir: string) {
  const versions = world.treeInfo.specs.map((spec) => world.tree.crate(spec.name, spec.version));
  const agent = new Agent({ connections: threads });
  await mkdir(dir, { recursive: true });
  let next = 0;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: threads }, async () => {
        for (let i = next++; i < versions.length; i = next++) {
          const crate = versions[i];
          if (!crate) continue;
          const url = `${world.tree.url}/dl/${crate.name}/${crate.version}/download`;
          const res = await request(url, { dispatcher: agent });
          const body = Buffer.from(await res.body.arrayBuffer());
          if (createHash('sha256').update(body).digest('hex') !== crate.checksum) {
            throw new Error(`checksum mismatch for ${crate.name}@${crate.version}`);
          }
          await writeFile(join(dir, `${crate.name}-${crate.version}.crate`), body);
        }
      }),
    );
  } finally {
    await agent.close();
  }
  return versions.length / ((performance.now() - start) / 1000);
}

/** 6. Full mirror throughput at `-t 16` and `-t 64`. */
export async function measureMirror(
  settings: BenchSettings,
  world: World,
  dir: string,
): Promise<Section> {
  const bare = await world.tree.enableGit(join(dir, 'upstream'));
  const total = world.treeInfo.specs.length;
  const rows: Row[] = [];
  world.tree.setFault({ kind: 'slow', delayMs: settings.upstreamLatencyMs });
  try {
    for (const threads of settings.mirrorThreads) {
      const mirror: number[] = [];
      const script: number[] = [];
      for (let i = 0; i < settings.runs; i++) {
        const result = await mirrorOnce(world, bare, threads, join(dir, `t${threads}-${i}`));
        if (result.fetched !== total) {
          throw new Error(`the mirror fetched ${result.fetched} of ${total} versions`);
        }
        mirror.push(result.perSecond);
        script.push(await scriptOnce(world, threads, join(dir, `script-t${threads}-${i}`)));
      }
      rows.push(
        compare(`-t ${threads}`, 'versions/s', mirror, script, {
          baselineName: `download script, ${threads} workers`,
          higherIsBetter: true,
        }),
      );
    }
  } finally {
    world.tree.setFault(undefined);
  }
  return {
    title: '6. Full mirror throughput',
    rows,
    notes: [
      `${total} versions of ${world.treeInfo.crateCount} crates; the upstream adds ${settings.upstreamLatencyMs} ms per request, so N workers can reach at most N / ${settings.upstreamLatencyMs} ms = ${settings.mirrorThreads.map((t) => Math.round((t * 1000) / settings.upstreamLatencyMs)).join(' and ')} versions/s.`,
      'cargo-cacher: the time between the mirror job’s start and end (after the first git clone), from `/api/v1/jobs`; every version fetched, verified and stored.',
      'The download script runs in the benchmark process, which also runs the fake upstream.',
    ],
  };
}
