import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { RECONCILED_AT } from '../../src/jobs/reconcile.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const execFileAsync = promisify(execFile);
const CRATE_PAD = 20_000;
const NAMES = ['up-a', 'up-b', 'up-c', 'up-d', 'up-e', 'up-f'];

async function upstreamWithCrates(t: { after: (fn: () => Promise<void>) => void }) {
  const upstream = await startFakeUpstream({
    crates: [
      ...NAMES.map((name) => ({ name, version: '1.0.0', padBytes: CRATE_PAD })),
      { name: 'up-big', version: '1.0.0', padBytes: 4_000_000 },
    ],
  });
  t.after(() => upstream.close());
  return upstream;
}

function download(proxy: RunningProxy, name: string, version = '1.0.0') {
  return httpGet(`${proxy.url}/api/v1/crates/${name}/${version}/download`);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function storedPath(proxy: RunningProxy, name: string, version = '1.0.0'): string {
  return join(proxy.storageDir, ...crateKey({ name, version }).split('/'));
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

function downloadsOf(upstream: FakeUpstream, name: string): number {
  return upstream.count((r) => r.path.startsWith(`/dl/${name}/`));
}

describe('expiration', () => {
  test('keeps the cache under --max-size as crates are stored, evicting least recently served, never pinned ones', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const dir = await makeTempDir('upkeep-pins');
    t.after(() => removeTempDir(dir));
    const pinFile = join(dir, 'pins.txt');
    await writeFile(pinFile, 'up-a = 1.0.0\n');
    // Served times come from the instance's clock, set past every file's mtime so that they,
    // not the order the files were written in, decide what was least recently served.
    const clock = { ms: Date.now() + 3_600_000 };
    const proxy = await startProxy({
      upstream,
      settings: { upkeep: { maxSizeBytes: 3.5 * CRATE_PAD, pins: [pinFile] } },
      now: () => clock.ms,
    });
    t.after(() => proxy.close());
    const budget = proxy.instance.maintenance.budget;
    assert.ok(budget, 'a budget keeper runs with --max-size');
    for (const name of ['up-a', 'up-b', 'up-c']) {
      assert.equal((await download(proxy, name)).status, 200);
      clock.ms += 1000;
    }
    await budget.idle();
    assert.equal(proxy.instance.catalogue.totals().crates.objects, 3, 'under budget: all kept');
    // up-b is served again: up-c is now the least recently served unpinned crate.
    assert.equal((await download(proxy, 'up-b')).status, 200);
    clock.ms += 1000;
    // The fourth crate takes the cache over budget: the keeper evicts on this write, no sweep.
    assert.equal((await download(proxy, 'up-d')).status, 200);
    await budget.idle();
    const held = proxy.instance.catalogue.totals().crates;
    assert.ok(held.bytes <= 3.5 * CRATE_PAD, `left ${held.bytes} bytes`);
    assert.ok(await exists(storedPath(proxy, 'up-a')), 'the pinned crate stays');
    assert.ok(await exists(storedPath(proxy, 'up-b')), 'the most recently served crate stays');
    assert.ok(await exists(storedPath(proxy, 'up-d')), 'the crate just stored stays');
    assert.equal(await exists(storedPath(proxy, 'up-c')), false, 'the least recently served goes');
    // Evictions show in the statistics (they survive restarts in the database) and metrics.
    const stats = JSON.parse((await httpGet(`${proxy.url}/api/v1/stats`)).body.toString('utf8'));
    assert.equal(stats.upkeep.evictedFiles, 1);
    const metrics = (await httpGet(`${proxy.url}/metrics`)).body.toString('utf8');
    assert.match(metrics, /cargo_cacher_evictions_total\{reason="over-budget"\} 1/);
    assert.match(
      metrics,
      new RegExp(`cargo_cacher_cache_size_bytes\\{area="crates"\\} ${held.bytes}`),
    );
    const before = downloadsOf(upstream, 'up-c');
    const again = await download(proxy, 'up-c');
    assert.equal(again.status, 200);
    assert.equal(again.headers['x-cache-status'], 'MISS');
    assert.equal(downloadsOf(upstream, 'up-c'), before + 1, 'an evicted crate is fetched again');
  });

  test('a client in the middle of a download still gets the whole file when it is evicted', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const proxy = await startProxy({ upstream, settings: { upkeep: { maxSizeBytes: 0 } } });
    t.after(() => proxy.close());
    assert.equal((await download(proxy, 'up-big')).status, 200);
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      get(`${proxy.url}/api/v1/crates/up-big/1.0.0/download`, (res) => {
        res.once('data', (first: Buffer) => {
          chunks.push(first);
          res.pause();
          proxy.instance.maintenance.runGc().then(() => {
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', resolve);
            res.resume();
          }, reject);
        });
        res.on('error', reject);
      }).on('error', reject);
    });
    await done;
    assert.equal(await exists(storedPath(proxy, 'up-big')), false, 'the file was evicted');
    assert.equal(sha256(Buffer.concat(chunks)), upstream.crate('up-big', '1.0.0').checksum);
  });

  test('--expire-after removes crates not served since, and unused index files', async (t) => {
    const upstream = await upstreamWithCrates(t);
    // An hour no test could sleep through: only the instance's clock moves past it.
    const clock = { ms: Date.now() };
    const expireAfterMs = 3_600_000;
    const proxy = await startProxy({
      upstream,
      settings: { upkeep: { expireAfterMs } },
      now: () => clock.ms,
    });
    t.after(() => proxy.close());
    await download(proxy, 'up-a');
    assert.equal((await httpGet(`${proxy.url}/index/up/-c/up-c`)).status, 200);
    clock.ms += 2 * expireAfterMs;
    await download(proxy, 'up-b');
    const report = await proxy.instance.maintenance.runGc();
    const keys = report.removed.map((r) => r.key).sort();
    // up-a's index file goes too: with its only version expired, nothing of it is cached.
    assert.deepEqual(keys, [
      crateKey({ name: 'up-a', version: '1.0.0' }),
      'index/up/-a/up-a',
      'index/up/-c/up-c',
    ]);
    assert.ok(await exists(storedPath(proxy, 'up-b')));
    assert.ok((await exists(join(proxy.storageDir, 'index', 'up', '-a', 'up-a'))) === false);
  });

  test('cargo-cacher gc --dry-run lists what it would remove and removes nothing', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const proxy = await startProxy({ upstream });
    t.after(() => proxy.close());
    for (const name of NAMES.slice(0, 3)) await download(proxy, name);
    const { stdout } = await execFileAsync(process.execPath, [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'gc',
      '-i',
      proxy.storageDir,
      '--max-size',
      `${Math.round(CRATE_PAD * 1.5)}`,
      '--dry-run',
    ]);
    assert.match(stdout, /would remove crates\/up\/-a\/up-a\/up-a-1\.0\.0\.crate/);
    assert.match(stdout, /would remove 2 files/);
    for (const name of NAMES.slice(0, 3)) assert.ok(await exists(storedPath(proxy, name)));
  });
});

describe('integrity', () => {
  async function corrupt(path: string): Promise<void> {
    const bytes = await readFile(path);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
  }

  function runVerify(storageDir: string, upstream: FakeUpstream, ...flags: string[]) {
    const args = [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'verify',
      '-i',
      storageDir,
      '-s',
      upstream.indexUrl,
    ];
    return execFileAsync(process.execPath, [...args, ...flags]).then(
      (out) => ({ code: 0, stdout: out.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
  }

  test('verify reports a flipped byte, --repair fixes it, and the exit code says whether it was clean', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const storageDir = await makeTempDir('upkeep-verify');
    t.after(() => removeTempDir(storageDir));
    const proxy = await startProxy({ upstream, storageDir });
    for (const name of NAMES.slice(0, 2)) await download(proxy, name);
    await proxy.close();
    const clean = await runVerify(proxy.storageDir, upstream);
    assert.equal(clean.code, 0, clean.stdout);
    const path = storedPath(proxy, 'up-a');
    await corrupt(path);
    const found = await runVerify(proxy.storageDir, upstream);
    assert.equal(found.code, 1);
    assert.match(found.stdout, /mismatch up-a@1\.0\.0: sha256 [0-9a-f]{64}, index says/);
    const repaired = await runVerify(proxy.storageDir, upstream, '--repair');
    assert.equal(repaired.code, 1);
    assert.match(repaired.stdout, /\[repaired\]/);
    assert.equal(sha256(await readFile(path)), upstream.crate('up-a', '1.0.0').checksum);
    assert.equal((await runVerify(proxy.storageDir, upstream)).code, 0);
  });

  test('the background check quarantines a corrupt crate so it is never served again', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const proxy = await startProxy({ upstream, settings: { upkeep: { verifyEveryMs: 100 } } });
    t.after(() => proxy.close());
    await download(proxy, 'up-a');
    const path = storedPath(proxy, 'up-a');
    await corrupt(path);
    await waitFor(
      async () => !(await exists(path)),
      10_000,
      'the corrupt file to leave the served tree',
    );
    const quarantined = await readdir(
      join(proxy.storageDir, 'quarantine', 'crates', 'up', '-a', 'up-a'),
    );
    assert.deepEqual(quarantined, ['up-a-1.0.0.crate']);
    // The pass counts its problems when it ends, a moment after the file was moved.
    const counted = /cargo_cacher_integrity_problems_total\{kind="mismatch"\} 1/;
    await waitFor(
      async () => counted.test((await httpGet(`${proxy.url}/metrics`)).body.toString('utf8')),
      10_000,
      'the pass to count the mismatch',
    );
    const served = await download(proxy, 'up-a');
    assert.equal(served.status, 200);
    assert.equal(sha256(served.body), upstream.crate('up-a', '1.0.0').checksum);
  });
});

describe('startup cleanup and reconcile', () => {
  test('startup removes temp files; the reconcile fetches the missing index file of a stored crate', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const storageDir = await makeTempDir('upkeep-startup');
    t.after(() => removeTempDir(storageDir));
    const first = await startProxy({ upstream, storageDir });
    await download(first, 'up-a');
    // A new catalogue is reconciled at once, in the background.
    await waitFor(
      () => first.instance.catalogue.getMeta(RECONCILED_AT) !== undefined,
      5_000,
      'the first reconcile',
    );
    await first.close();
    await writeFile(join(storageDir, 'tmp', 'leftover.tmp'), 'half a crate');
    const indexFile = join(storageDir, 'index', 'up', '-a', 'up-a');
    await execFileAsync('rm', [indexFile]);
    const second = await startProxy({ upstream, storageDir });
    t.after(() => second.close());
    assert.deepEqual(await readdir(join(storageDir, 'tmp')), []);
    // The catalogue was reconciled at the first start: the next one is due in a day, or by hand.
    assert.equal(await exists(indexFile), false, 'startup itself lists nothing');
    const report = await second.instance.maintenance.runReconcile();
    assert.ok(report, 'a store of one instance is listed at once');
    assert.equal(report.dropped, 1, 'the row of the removed index file is dropped');
    assert.equal(report.indexRestored, 1);
    assert.ok(await exists(indexFile), 'the index file is fetched again');
    assert.ok(second.instance.catalogue.has('index/up/-a/up-a'));
  });
});
