/**
 * Toolchain traffic in the statistics, /metrics and /health: its own request kind, bytes saved,
 * the top toolchain releases, the toolchain area of the cache, and the rustup upstream's state.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { StatsSummary } from '../../src/stats/summary.ts';
import { FakeDistTree } from '../helpers/fake-dist.ts';
import { startFakeDistServer } from '../helpers/fake-dist-server.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';

async function getJson<T>(url: string): Promise<T> {
  const response = await httpGet(url);
  assert.equal(response.status, 200, response.body.toString());
  return JSON.parse(response.body.toString()) as T;
}

/** The summary once it counts `requests` toolchain requests (recorded when a response closes). */
async function statsWhen(proxy: RunningProxy, requests: number): Promise<StatsSummary> {
  for (let attempt = 0; ; attempt += 1) {
    const stats = await getJson<StatsSummary>(`${proxy.url}/api/v1/stats`);
    if ((stats.byKind.toolchain?.requests ?? 0) >= requests || attempt === 40) return stats;
    await delay(25);
  }
}

test('toolchain requests are a kind of their own: hits, bytes saved, top releases, size, health', async (t) => {
  const tree = new FakeDistTree();
  const release = await tree.publish({ version: '1.99.0', date: '2026-11-26' });
  const dist = await startFakeDistServer(tree);
  t.after(() => dist.close());
  const proxy = await startProxy({
    settings: {
      sparseUpstream: undefined,
      rustup: { upstream: dist.url },
      resilience: { attempts: 1, breakerFailures: 1 },
    },
  });
  t.after(() => proxy.close());
  const archive = release.archives.rustc?.[0] as string;
  const size = tree.files.get(archive)?.length ?? 0;

  assert.equal((await httpGet(`${proxy.url}/dist/channel-rust-stable.toml`)).status, 200);
  for (let i = 0; i < 3; i += 1) {
    assert.equal((await httpGet(`${proxy.url}${archive}`)).status, 200);
    await proxy.deps.toolchains?.idle();
  }
  const stats = await statsWhen(proxy, 4);
  const kind = stats.byKind.toolchain;
  assert.equal(kind?.requests, 4);
  assert.equal(kind?.misses, 2, 'the manifest and the first archive download');
  assert.equal(kind?.hits, 2);
  assert.ok((kind?.bytesSaved ?? 0) >= 2 * size, `saved ${kind?.bytesSaved}`);
  assert.deepEqual(
    stats.topToolchains.map((top) => [top.release, top.downloads, top.hits]),
    [['1.99.0 (2026-11-26)', 3, 2]],
  );
  assert.equal(stats.cache.toolchains.objects, 3, 'the manifest, its sidecar and the archive');
  assert.ok(stats.upstream.sources.some((source) => source.source === 'rustup'));

  const metrics = (await httpGet(`${proxy.url}/metrics`)).body.toString();
  assert.match(metrics, /cargo_cacher_requests_total\{kind="toolchain",outcome="hit"\} 2/);
  assert.match(metrics, /cargo_cacher_cache_objects\{area="toolchains"\} 3/);

  const healthy = await getJson<{ status: string; rustup: { upstream: string; state: string } }>(
    `${proxy.url}/health`,
  );
  assert.equal(healthy.status, 'ok');
  assert.deepEqual([healthy.rustup.upstream, healthy.rustup.state], [dist.url, 'closed']);

  dist.down();
  const other = release.archives.cargo?.[0] as string;
  assert.equal((await httpGet(`${proxy.url}${other}`)).status, 503);
  const degraded = await getJson<{ status: string; rustup: { state: string; failures: number } }>(
    `${proxy.url}/health`,
  );
  assert.equal(degraded.status, 'degraded');
  assert.equal(degraded.rustup.state, 'open');
});
