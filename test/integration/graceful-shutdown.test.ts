/**
 * Graceful shutdown: a stop lets the responses under way and the job packages being worked on
 * finish, starts no new package, and jobs resume at the next start without fetching again what
 * they stored; SIGTERM waits at most --shutdown-timeout.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { JobSnapshot } from '../../src/jobs/job.ts';
import { startCli } from '../helpers/cli-process.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CRATES = ['stop-a', 'stop-b', 'stop-c', 'stop-d'].map((name) => ({
  name,
  version: '1.0.0',
  padBytes: 16 * 1024,
}));

async function world(t: TestContext) {
  const dir = await makeTempDir('graceful');
  t.after(() => removeTempDir(dir));
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const list = join(dir, 'list');
  await writeFile(list, CRATES.map((crate) => `${crate.name}=${crate.version}\n`).join(''));
  return { dir, upstream, list, storageDir: join(dir, 'store') };
}

const crateRequests = (path: string) => path.includes('/dl/');

/** The proxy's prefetch job, once no job runs. */
async function prefetchDone(proxy: RunningProxy): Promise<JobSnapshot> {
  const { jobs } = proxy.deps;
  await waitFor(
    () => jobs.list().some((job) => job.kind === 'prefetch') && jobs.running().length === 0,
    30_000,
    'the prefetch job',
  );
  const id = jobs.list().find((job) => job.kind === 'prefetch')?.id ?? '';
  const job = jobs.get(id);
  assert.ok(job);
  return job.snapshot(true);
}

describe('graceful shutdown', () => {
  test('a stop lets the package under way finish, starts no other, and the job resumes at the next start', async (t) => {
    const { upstream, list, storageDir } = await world(t);
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    const first = await startProxy({
      upstream,
      storageDir,
      settings: { prefetch: [list], threads: 1 },
    });
    await gate.arrived(1);
    const job = first.deps.jobs.running()[0];
    assert.ok(job, 'the prefetch job runs');
    const stopping = first.close();
    // Nothing moves until the gate opens: the one package under way is the only one started.
    gate.open();
    await stopping;
    assert.equal(
      upstream.count((request) => crateRequests(request.path)),
      1,
    );
    const stopped = first.deps.jobs.get(job.id)?.snapshot(true);
    assert.equal(stopped?.state, 'failed');
    assert.equal(stopped?.error, 'stopped before the end');
    assert.deepEqual(
      stopped?.report?.map((entry) => `${entry.name} ${entry.status}`),
      ['stop-a fetched'],
    );

    upstream.resetLog();
    upstream.setFault(undefined);
    const second = await startProxy({ upstream, storageDir, settings: { prefetch: [list] } });
    t.after(() => second.close());
    const resumed = await prefetchDone(second);
    assert.equal(resumed.state, 'done');
    assert.deepEqual(resumed.report?.map((entry) => `${entry.name} ${entry.status}`).sort(), [
      'stop-a cached',
      'stop-b fetched',
      'stop-c fetched',
      'stop-d fetched',
    ]);
    assert.equal(
      upstream.count((request) => /stop-a/.test(request.path) && crateRequests(request.path)),
      0,
    );
  });

  test('SIGTERM lets an in-flight download finish, then the process exits', async (t) => {
    const { upstream, storageDir } = await world(t);
    const cli = await startCli([
      '--config',
      'none',
      '-i',
      storageDir,
      '-s',
      upstream.indexUrl,
      '--no-git',
    ]);
    t.after(() => cli.kill9());
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    const download = httpGet(`${cli.url}/api/v1/crates/stop-b/1.0.0/download`);
    await gate.arrived(1);
    const exited = once(cli.child, 'exit');
    cli.child.kill('SIGTERM');
    await waitFor(
      () => cli.logs.some((line) => line.msg.startsWith('shutting down')),
      30_000,
      'the shutdown line',
    );
    gate.open();
    const response = await download;
    assert.equal(response.status, 200);
    assert.equal(response.complete, true);
    assert.deepEqual(await exited, [0, null]);
    assert.ok(cli.logs.some((line) => line.msg === 'stopped'));
    assert.ok(!cli.logs.some((line) => /shutdown timeout/.test(line.msg)));
  });

  test('SIGTERM gives up on what still runs after --shutdown-timeout', async (t) => {
    const { upstream, storageDir } = await world(t);
    const cli = await startCli([
      '--config',
      'none',
      '-i',
      storageDir,
      '-s',
      upstream.indexUrl,
      '--no-git',
      '--shutdown-timeout',
      '1s',
    ]);
    t.after(() => cli.kill9());
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    // Never opened: the download would hold the shutdown forever without the bound.
    const download = httpGet(`${cli.url}/api/v1/crates/stop-c/1.0.0/download`).catch(
      (err: Error) => err,
    );
    await gate.arrived(1);
    const exited = once(cli.child, 'exit');
    cli.child.kill('SIGTERM');
    assert.deepEqual(await exited, [0, null]);
    const timedOut = cli.logs.find((line) => /^shutdown timeout reached/.test(line.msg));
    assert.equal(timedOut?.shutdownTimeout, '1s');
    const abandoned = await download;
    assert.ok(abandoned instanceof Error || !abandoned.complete || abandoned.status !== 200);
  });
});
