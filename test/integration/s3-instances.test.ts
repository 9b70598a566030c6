/**
 * Several instances on one bucket (s3rver): what one cached the other serves, even with upstream
 * down; a miss on both at once is downloaded once (the fetch lease); gc and verify work on the
 * bucket from the command line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { crateKey } from '../../src/registry/crate-id.ts';
import { createS3Client } from '../../src/storage/s3-client.ts';
import { type FakeUpstream, Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { startS3, type TestS3 } from '../helpers/s3.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);
const PREFIX = 'shared/';
const NAMES = ['s3-a', 's3-b', 's3-c', 's3-d', 's3-e'];
const PAD = 30_000;

let s3: TestS3;
let raw: S3Client;
let upstream: FakeUpstream;
let a: RunningProxy;
let b: RunningProxy;

before(async () => {
  s3 = await startS3();
  raw = createS3Client(s3.settings());
  upstream = await startFakeUpstream({
    crates: NAMES.map((name) => ({ name, version: '1.0.0', padBytes: PAD })),
  });
  const settings = { s3: s3.settings(PREFIX) };
  a = await startProxy({ upstream, settings });
  b = await startProxy({ upstream, settings });
});

after(async () => {
  await a?.close();
  await b?.close();
  await upstream?.close();
  raw?.destroy();
  await s3?.close();
});

function download(proxy: RunningProxy, name: string) {
  return httpGet(`${proxy.url}/api/v1/crates/${name}/1.0.0/download`);
}

/**
 * Resolves once `proxy` has asked for the lease on `key`, found it taken and looked for the
 * published blob: it is waiting for another instance's download. Wraps the store's `lease` and
 * `stat` as own properties (the lease polls through `stat`); delete both to undo.
 */
function pollsForBlob(proxy: RunningProxy, key: string): Promise<void> {
  const store = proxy.deps.store;
  const { lease, stat } = store;
  let leasing = false;
  return new Promise((resolve) => {
    store.lease = (leaseKey) => {
      if (leaseKey === key) leasing = true;
      return lease(leaseKey);
    };
    store.stat = (statKey) => {
      if (leasing && statKey === key) resolve();
      return stat(statKey);
    };
  });
}

function downloadsOf(name: string): number {
  return upstream.count((r) => r.path.startsWith(`/dl/${name}/`));
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function bucketObject(name: string): Promise<Buffer | undefined> {
  const Key = `${PREFIX}${crateKey({ name, version: '1.0.0' })}`;
  try {
    const got = await raw.send(new GetObjectCommand({ Bucket: s3.bucket, Key }));
    return Buffer.from((await got.Body?.transformToByteArray()) ?? []);
  } catch {
    return undefined;
  }
}

/** The CLI with the storage flags of the shared bucket and `-i` of instance `a`. */
function runCli(command: string, ...flags: string[]) {
  return runCliOn(a.storageDir, command, ...flags);
}

/** The CLI with the storage flags of the shared bucket and `-i` of `storageDir`. */
function runCliOn(storageDir: string, command: string, ...flags: string[]) {
  const args = ['--import', 'tsx', 'src/cli/main.ts', command, '-i', storageDir];
  return execFileAsync(process.execPath, [...args, ...s3.flags(PREFIX), ...flags]).then(
    (out) => ({ code: 0, stdout: out.stdout, stderr: out.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}

describe('two instances on one bucket', () => {
  test('a bucket that does not answer stops an instance at startup, with one clear line', async (t) => {
    const storageDir = await makeTempDir('s3-missing-bucket');
    t.after(() => removeTempDir(storageDir));
    const settings = { s3: { ...s3.settings(), bucket: 'no-such-bucket' } };
    await assert.rejects(startProxy({ upstream, settings, storageDir }), {
      code: 'CARGO_CACHER_INVALID_CONFIG',
      message: /cannot use storage s3:\/\/no-such-bucket\/ at http:\/\/127\.0\.0\.1:\d+: HTTP 404/,
    });
  });

  test("each serves the other's cached crates and index files, upstream stopped", async () => {
    assert.equal((await download(a, 's3-a')).status, 200);
    assert.equal((await download(b, 's3-b')).status, 200);
    assert.deepEqual([downloadsOf('s3-a'), downloadsOf('s3-b')], [1, 1]);
    assert.equal(sha256((await bucketObject('s3-a')) ?? Buffer.alloc(0)), checksumOf('s3-a'));
    await upstream.stop();
    try {
      const fromB = await download(b, 's3-a');
      assert.equal(fromB.status, 200);
      assert.equal(fromB.headers['x-cache-status'], 'HIT');
      assert.equal(sha256(fromB.body), checksumOf('s3-a'));
      const fromA = await download(a, 's3-b');
      assert.equal(fromA.status, 200);
      assert.equal(sha256(fromA.body), checksumOf('s3-b'));
      const index = await httpGet(`${b.url}/index/s3/-a/s3-a`);
      assert.equal(index.status, 200);
      assert.match(index.body.toString(), /"vers":"1\.0\.0"/);
      assert.equal(a.deps.store.location, `s3://${s3.bucket}/${PREFIX} at ${s3.endpoint}`);
    } finally {
      await upstream.restart();
    }
  });

  test('a miss on both instances at once is downloaded from upstream once', async () => {
    // The first instance's download is held half-sent until the second one waits on its lease.
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    const key = crateKey({ name: 's3-c', version: '1.0.0' });
    try {
      const fromAPending = download(a, 's3-c');
      await gate.arrived(1);
      const waiting = pollsForBlob(b, key);
      const fromBPending = download(b, 's3-c');
      const outcome = await Promise.race([
        waiting.then(() => 'waits for the lease'),
        gate.arrived(2).then(() => 'downloads too'),
      ]);
      assert.equal(outcome, 'waits for the lease');
      gate.open();
      const [fromA, fromB] = await Promise.all([fromAPending, fromBPending]);
      assert.equal(fromA.status, 200);
      assert.equal(fromB.status, 200);
      assert.equal(sha256(fromA.body), checksumOf('s3-c'));
      assert.deepEqual(fromB.body, fromA.body);
      assert.equal(downloadsOf('s3-c'), 1);
    } finally {
      gate.open();
      upstream.setFault(undefined, 'crate');
      Reflect.deleteProperty(b.deps.store, 'lease');
      Reflect.deleteProperty(b.deps.store, 'stat');
    }
  });

  test('cargo-cacher gc sweeps the bucket', async () => {
    await download(a, 's3-d');
    const dry = await runCli('gc', '--max-size', '1', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would remove crates\/s3\/-d\/s3-d\/s3-d-1\.0\.0\.crate/);
    assert.ok(await bucketObject('s3-d'), 'a dry run removes nothing');
    const pins = join(a.storageDir, 'pins.txt');
    await writeFile(pins, 's3-a = 1.0.0\n');
    const real = await runCli('gc', '--max-size', '1', '--pin', pins);
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /removed 3 files/);
    assert.ok(await bucketObject('s3-a'), 'pinned');
    assert.equal(await bucketObject('s3-d'), undefined);
    // Gone from the bucket is gone for every instance: the next request fetches it again.
    const again = await download(b, 's3-d');
    assert.equal(again.headers['x-cache-status'], 'MISS');
    assert.equal(downloadsOf('s3-d'), 2);
  });

  test("cargo-cacher stats shows what the instance's catalogue holds: the bucket after a reconcile", async () => {
    let crates = 0;
    for await (const _blob of a.deps.store.list('crates')) crates += 1;
    const reconciled = await runCli('reconcile');
    assert.equal(reconciled.code, 0, reconciled.stderr);
    const out = await runCli('stats', '--json');
    assert.equal(out.code, 0, out.stderr);
    const summary = JSON.parse(out.stdout) as { cache: { crates: { objects: number } } };
    assert.ok(crates > 0);
    assert.equal(summary.cache.crates.objects, crates);
  });

  test('cargo-cacher verify finds a corrupt object in the bucket and --repair fetches it again', async () => {
    await download(a, 's3-e');
    const clean = await runCli('verify', '-s', upstream.indexUrl);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    const bytes = (await bucketObject('s3-e')) ?? Buffer.alloc(0);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    const Key = `${PREFIX}${crateKey({ name: 's3-e', version: '1.0.0' })}`;
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: bytes }));
    const found = await runCli('verify', '-s', upstream.indexUrl);
    assert.equal(found.code, 1);
    assert.match(found.stdout, /mismatch s3-e@1\.0\.0: sha256 [0-9a-f]{64}, index says/);
    const repaired = await runCli('verify', '-s', upstream.indexUrl, '--repair');
    assert.match(repaired.stdout, /\[repaired\]/);
    assert.equal(sha256((await bucketObject('s3-e')) ?? Buffer.alloc(0)), checksumOf('s3-e'));
    assert.equal((await runCli('verify', '-s', upstream.indexUrl)).code, 0);
  });

  test('the background check (--verify-every) quarantines a corrupt object in the bucket', async (t) => {
    await download(a, 's3-b');
    const key = `${PREFIX}${crateKey({ name: 's3-b', version: '1.0.0' })}`;
    const bytes = (await bucketObject('s3-b')) ?? Buffer.alloc(0);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }));
    // A new instance checks what its catalogue holds: here, the bucket, reconciled by hand.
    const storageDir = await makeTempDir('s3-checker');
    t.after(() => removeTempDir(storageDir));
    const reconciled = await runCliOn(storageDir, 'reconcile');
    assert.equal(reconciled.code, 0, reconciled.stderr);
    const checker = await startProxy({
      upstream,
      storageDir,
      settings: { s3: s3.settings(PREFIX), upkeep: { verifyEveryMs: 100 } },
    });
    t.after(() => checker.close());
    const deadline = Date.now() + 10_000;
    while ((await bucketObject('s3-b')) && Date.now() < deadline) await sleep(100);
    assert.equal(await bucketObject('s3-b'), undefined, 'the corrupt object left crates/');
    const quarantined = await raw.send(
      new GetObjectCommand({
        Bucket: s3.bucket,
        Key: `${PREFIX}quarantine/${crateKey({ name: 's3-b', version: '1.0.0' })}`,
      }),
    );
    assert.deepEqual(Buffer.from((await quarantined.Body?.transformToByteArray()) ?? []), bytes);
    // Any instance now fetches it again instead of serving the corrupt copy.
    const served = await download(b, 's3-b');
    assert.equal(sha256(served.body), checksumOf('s3-b'));
  });

  test('two instances agree on what is held after a reconcile, and only one lists the bucket', async (t) => {
    const clock = { ms: Date.now() };
    const prefix = 'agree/';
    const settings = { s3: s3.settings(prefix) };
    const one = await startProxy({ upstream, settings, now: () => clock.ms });
    t.after(() => one.close());
    const two = await startProxy({ upstream, settings, now: () => clock.ms });
    t.after(() => two.close());
    // Each stores some crates; each catalogue knows only its own.
    for (const name of ['s3-a', 's3-b']) assert.equal((await download(one, name)).status, 200);
    assert.equal((await download(two, 's3-c')).status, 200);
    const held = (proxy: RunningProxy) =>
      new Map(
        proxy.instance.catalogue
          .rowsBetween('crates/', 'crates0')
          .map((row) => [row.key, row.size] as const),
      );
    assert.equal(held(one).size, 2);
    assert.equal(held(two).size, 1);
    // A day later both reconcile; the second uses the listing the first one made.
    clock.ms += 25 * 60 * 60 * 1000;
    let listings = 0;
    for (const proxy of [one, two]) {
      const store = proxy.instance.storage.raw;
      const list = store.list.bind(store);
      store.list = (listPrefix) => {
        listings += 1;
        return list(listPrefix);
      };
    }
    assert.ok(await one.instance.maintenance.runReconcile());
    assert.ok(await two.instance.maintenance.runReconcile());
    assert.equal(listings, 3, 'one instance listed the three areas of the bucket, once');
    const bucket = new Map<string, number>();
    for await (const blob of one.instance.storage.raw.list('crates'))
      bucket.set(blob.key, blob.size);
    assert.equal(bucket.size, 3);
    assert.deepEqual(held(one), bucket);
    assert.deepEqual(held(two), bucket);
    assert.deepEqual(one.instance.catalogue.totals(), two.instance.catalogue.totals());
  });
});

function checksumOf(name: string): string {
  return upstream.crate(name, '1.0.0').checksum;
}
