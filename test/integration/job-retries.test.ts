/**
 * How often one job package asks a failing upstream: the documented maximum of the one retry
 * policy (docs/RELIABILITY.md, "Retries"), counted at the fake upstream. Jobs are built on a
 * real instance's caches with an injected sleep, so nothing waits for the backoff.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { ConfigSettings } from '../../src/config.ts';
import type { PackageReport } from '../../src/jobs/job.ts';
import { storeVersion } from '../../src/jobs/mirror-version.ts';
import { Prefetcher } from '../../src/jobs/prefetcher.ts';
import { createLogger } from '../../src/logger.ts';
import { JOB_RETRY, type JobRetry } from '../../src/upstream/retry-policy.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';

/** The documented maximum: attempts per upstream file of a job package, per upstream. */
const MAX_ATTEMPTS = 4;
const CRATES = [
  { name: 'jr-a', version: '1.0.0' },
  { name: 'jr-b', version: '1.0.0' },
];
const log = createLogger({ level: 'silent', format: 'json' });

async function upstreamFor(t: TestContext): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  return upstream;
}

async function proxyFor(t: TestContext, settings: ConfigSettings, upstream?: FakeUpstream) {
  const proxy = await startProxy({ ...(upstream && { upstream }), settings });
  t.after(() => proxy.close());
  return proxy;
}

/** The job policy with the backoff's middle value and a sleep that only records. */
function instantRetry(): { retry: JobRetry; waits: number[] } {
  const waits: number[] = [];
  const retry = {
    ...JOB_RETRY,
    random: () => 0.5,
    sleep: async (ms: number) => {
      waits.push(ms);
    },
  };
  return { retry, waits };
}

async function prefetchOne(proxy: RunningProxy, retry: JobRetry, name: string) {
  const { index, crates, jobs } = proxy.deps;
  const prefetcher = new Prefetcher({ index, crates, jobs, threads: 1, log, retry });
  const request = { crates: [{ name, version: '1.0.0' }], skipped: [], files: [] };
  const job = await prefetcher.run(request, `prefetch of ${name}`);
  return job.report;
}

function onlyFailure(report: PackageReport[]): PackageReport {
  assert.equal(report.length, 1);
  assert.equal(report[0]?.status, 'failed');
  return report[0] as PackageReport;
}

describe('one job package against a failing upstream', () => {
  test('the documented maximum is the policy in force', () => {
    assert.equal(JOB_RETRY.attempts, MAX_ATTEMPTS);
  });

  test('prefetch: a crate that keeps failing is downloaded 4 times, 1 s, 2 s, 4 s apart', async (t) => {
    const upstream = await upstreamFor(t);
    upstream.setFault({ kind: 'status', status: 500 }, '/dl/jr-a/1.0.0/download');
    const proxy = await proxyFor(t, {}, upstream);
    const { retry, waits } = instantRetry();
    const failed = onlyFailure(await prefetchOne(proxy, retry, 'jr-a'));
    assert.match(failed.reason ?? '', /500/);
    assert.equal(upstream.count('/dl/jr-a/'), MAX_ATTEMPTS);
    assert.equal(upstream.count('/index/jr/-a/jr-a'), 1, 'its index file came at once');
    assert.deepEqual(waits, [1000, 2000, 4000]);
  });

  test('prefetch: an index file that keeps failing is asked 4 times, and the crate never', async (t) => {
    const upstream = await upstreamFor(t);
    upstream.setFault({ kind: 'status', status: 503 }, '/index/jr/-b/jr-b');
    const proxy = await proxyFor(t, {}, upstream);
    const { retry } = instantRetry();
    onlyFailure(await prefetchOne(proxy, retry, 'jr-b'));
    assert.equal(upstream.count('/index/jr/-b/jr-b'), MAX_ATTEMPTS);
    assert.equal(upstream.count('/dl/'), 0);
  });

  test('full and filtered mirror: a version that keeps failing is downloaded 4 times', async (t) => {
    const upstream = await upstreamFor(t);
    upstream.setFault({ kind: 'reset' }, 'crate');
    const proxy = await proxyFor(t, {}, upstream);
    const { retry, waits } = instantRetry();
    const { checksum } = upstream.crate('jr-a', '1.0.0');
    const entry = { name: 'jr-a', version: '1.0.0', checksum, yanked: false };
    const report = await storeVersion({ crates: proxy.deps.crates, retry }, entry);
    assert.equal(report.status, 'failed');
    assert.equal(upstream.count('/dl/'), MAX_ATTEMPTS);
    assert.equal(waits.length, MAX_ATTEMPTS - 1);
  });

  test('with two crate upstreams (-u a,b), each is asked 4 times', async (t) => {
    const [first, second] = [await upstreamFor(t), await upstreamFor(t)];
    for (const upstream of [first, second]) upstream.setFault({ kind: 'status', status: 502 });
    const proxy = await proxyFor(t, { crateUpstream: `${first.url}/dl,${second.url}/dl` });
    const { retry } = instantRetry();
    const { checksum } = first.crate('jr-a', '1.0.0');
    const entry = { name: 'jr-a', version: '1.0.0', checksum, yanked: false };
    await storeVersion({ crates: proxy.deps.crates, retry }, entry);
    assert.deepEqual([first.count('/dl/'), second.count('/dl/')], [MAX_ATTEMPTS, MAX_ATTEMPTS]);
  });

  test('a client request to the same failing upstream still makes its own 3 rounds', async (t) => {
    const upstream = await upstreamFor(t);
    upstream.setFault({ kind: 'status', status: 500 }, 'crate');
    const proxy = await proxyFor(t, { resilience: { retryDelayMs: 1 } }, upstream);
    const response = await httpGet(`${proxy.url}/api/v1/crates/jr-a/1.0.0/download`);
    assert.equal(response.status, 502);
    assert.equal(upstream.count('/dl/jr-a/'), proxy.config.resilience.attempts);
    assert.equal(proxy.config.resilience.attempts, 3);
  });
});
