/**
 * The supply-chain policy with the real cargo over the sparse and git protocols: a cooldown makes
 * a fresh resolve pick the older version (the young one is listed as yanked), an exempted young
 * version resolves, a deny file edited while the proxy runs takes effect within seconds, a lock
 * file pinning a denied or young version is refused with a message cargo prints, and a version
 * upstream removed stops being served after the next revalidation.
 */
import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { crateKey } from '../../src/registry/crate-id.ts';
import { lockedPackages, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { runCliCommand } from '../helpers/cli-process.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const DAY = 86_400_000;
/** The instance clock of every proxy here; index lines are dated against it. */
const NOW = Date.parse('2026-11-20T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

async function world(t: TestContext) {
  const upstream = await startFakeUpstream({
    crates: [
      { name: 'pol-a', version: '1.0.0', pubtime: iso(NOW - 30 * DAY) },
      { name: 'pol-a', version: '1.1.0', pubtime: iso(NOW - 3_600_000) },
      { name: 'pol-old', version: '0.1.0' },
    ],
  });
  t.after(() => upstream.close());
  const dir = await makeTempDir('policy');
  t.after(() => removeTempDir(dir));
  return { upstream, dir };
}

async function proxyWith(
  t: TestContext,
  upstream: FakeUpstream,
  policy: Record<string, unknown>,
  clock = { ms: NOW },
): Promise<RunningProxy> {
  const proxy = await startProxy({
    upstream,
    settings: { indexTtlMs: 0, policy },
    now: () => clock.ms,
  });
  t.after(() => proxy.close());
  return proxy;
}

async function resolve(t: TestContext, proxy: RunningProxy, deps: Record<string, string>) {
  const box = await makeCargoSandbox({ registry: proxy.sparseRegistry, deps });
  t.after(() => box.remove());
  await box.cargo(['generate-lockfile']);
  return { box, locked: await lockedPackages(box) };
}

/** The `yanked` flag of a version's line in a served index file; undefined when it is absent. */
function yankedIn(body: Buffer, version: string): boolean | undefined {
  const lines = body.toString().split('\n').filter(Boolean);
  const line = lines.map((text) => JSON.parse(text)).find((entry) => entry.vers === version);
  return line?.yanked;
}

/** A cargo project with a fresh CARGO_HOME (no copy of the index) and the given lock file. */
async function lockedProject(t: TestContext, registry: string, lockFrom: string) {
  const box = await makeCargoSandbox({ registry, deps: { 'pol-a': '1' } });
  t.after(() => box.remove());
  await copyFile(join(lockFrom, 'Cargo.lock'), join(box.projectDir, 'Cargo.lock'));
  return box;
}

const versionOf = (locked: { name: string; version: string }[], name: string) =>
  locked.find((pkg) => pkg.name === name)?.version;

describe('supply-chain policy with cargo (sparse)', { timeout: 300_000 }, () => {
  test('with a cooldown a fresh resolve picks the older version; the young one is refused', async (t) => {
    const { upstream } = await world(t);
    const proxy = await proxyWith(t, upstream, { minPublishAgeMs: 3 * DAY });
    const { locked } = await resolve(t, proxy, { 'pol-a': '1', 'pol-old': '0.1' });
    assert.equal(versionOf(locked, 'pol-a'), '1.0.0');
    assert.equal(versionOf(locked, 'pol-old'), '0.1.0', 'a line without pubtime passes');
    // The young version is served marked yanked: every other byte is upstream's.
    const index = await httpGet(`${proxy.url}/index/po/l-/pol-a`);
    const young = upstream.crate('pol-a', '1.1.0').indexLine;
    assert.equal(
      index.body.toString(),
      `${upstream.crate('pol-a', '1.0.0').indexLine}\n${young.replace('"yanked":false', '"yanked":true')}\n`,
    );
    const refused = await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`);
    assert.equal(refused.status, 403);
    const detail = JSON.parse(refused.body.toString()).errors[0].detail as string;
    assert.match(detail, /pol-a@1\.1\.0 was published at 2026-11-20T11:00:00\.000Z/);
    assert.match(detail, /3d old \(--min-publish-age\): available from 2026-11-23T11:00:00\.000Z/);
    assert.equal(upstream.count('/dl/pol-a/1.1.0'), 0, 'nothing was fetched');
    const metrics = (await httpGet(`${proxy.url}/metrics`)).body.toString();
    assert.match(metrics, /cargo_cacher_policy_withheld_total\{reason="young"\} [1-9]/);
    assert.match(metrics, /cargo_cacher_policy_blocked_total\{reason="young"\} 1\b/);
  });

  test('an exempted young version resolves', async (t) => {
    const { upstream, dir } = await world(t);
    const allow = join(dir, 'allow-young');
    await writeFile(allow, '# urgent fix\npol-a@1.1.0\n');
    const proxy = await proxyWith(t, upstream, {
      minPublishAgeMs: 3 * DAY,
      allowYoungFile: allow,
    });
    const { box, locked } = await resolve(t, proxy, { 'pol-a': '1' });
    assert.equal(versionOf(locked, 'pol-a'), '1.1.0');
    await box.cargo(['fetch', '--locked']);
    // The exemption withdrawn: a lock file that pins the young version now fails with our
    // message, also for a cargo with no copy of the index (the version is listed as yanked, and
    // cargo keeps a locked yanked version and goes on to its download).
    await writeFile(allow, '');
    await waitFor(
      async () => (await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`)).status === 403,
      10_000,
      'the emptied exemption file to be in force',
    );
    const fresh = await lockedProject(t, proxy.sparseRegistry, box.projectDir);
    await assert.rejects(
      fresh.cargo(['fetch', '--locked']),
      /got 403[\s\S]*pol-a@1\.1\.0 was published at 2026-11-20T11:00:00\.000Z/,
    );
  });

  test('with --withheld-as omit the line is left out and a lock pinning it stops in cargo', async (t) => {
    const { upstream } = await world(t);
    const open = await proxyWith(t, upstream, {});
    const { box } = await resolve(t, open, { 'pol-a': '1' });
    const omitting = await proxyWith(t, upstream, { minPublishAgeMs: 3 * DAY, withheldAs: 'omit' });
    const index = await httpGet(`${omitting.url}/index/po/l-/pol-a`);
    assert.equal(index.body.toString(), `${upstream.crate('pol-a', '1.0.0').indexLine}\n`);
    const fresh = await lockedProject(t, omitting.sparseRegistry, box.projectDir);
    await assert.rejects(
      fresh.cargo(['fetch', '--locked']),
      /failed to select a version for the requirement `pol-a = "\^1"` \(locked to 1\.1\.0\)/,
    );
  });

  test('a version comes of age when the clock passes its cooldown', async (t) => {
    const { upstream } = await world(t);
    const clock = { ms: NOW };
    const proxy = await proxyWith(t, upstream, { minPublishAgeMs: 3 * DAY }, clock);
    const before = await httpGet(`${proxy.url}/index/po/l-/pol-a`);
    assert.equal(yankedIn(before.body, '1.1.0'), true);
    clock.ms += 3 * DAY;
    const after = await httpGet(`${proxy.url}/index/po/l-/pol-a`);
    const lines = ['1.0.0', '1.1.0'].map((version) => upstream.crate('pol-a', version).indexLine);
    assert.equal(after.body.toString(), `${lines.join('\n')}\n`, 'upstream bytes once of age');
    assert.notEqual(after.headers.etag, before.headers.etag, 'the ETag is of the bytes served');
  });

  test('an edit to the deny file takes effect within seconds; cargo prints the refusal', async (t) => {
    const { upstream, dir } = await world(t);
    const deny = join(dir, 'deny');
    await writeFile(deny, '# nothing yet\n');
    const proxy = await proxyWith(t, upstream, { denyFile: deny });
    const { box, locked } = await resolve(t, proxy, { 'pol-a': '=1.1.0' });
    assert.equal(versionOf(locked, 'pol-a'), '1.1.0');
    await writeFile(deny, 'pol-a@>=1.1, <2 # compromised release\n');
    await waitFor(
      async () => (await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`)).status === 403,
      10_000,
      'the edited deny file to be in force',
    );
    const index = await httpGet(`${proxy.url}/index/po/l-/pol-a`);
    assert.equal(yankedIn(index.body, '1.1.0'), true, 'listed as yanked');
    const inForce = JSON.parse((await httpGet(`${proxy.url}/api/v1/policy`)).body.toString());
    assert.deepEqual(inForce.deny.rules, [{ rule: 'pol-a@>=1.1, <2', at: `${deny}:1` }]);
    // A malformed edit is reported and the list in force stays.
    await writeFile(deny, 'pol-a@not a requirement\n');
    const refused = await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`);
    assert.equal(refused.status, 403);
    assert.match(
      JSON.parse(refused.body.toString()).errors[0].detail,
      /denied by this cache's supply-chain policy \(rule "pol-a@>=1\.1, <2"\)/,
    );
    // cargo, with the lock file made before the edit, is refused: with its copy of the index,
    // and with none.
    const deniedMessage =
      /got 403[\s\S]*pol-a@1\.1\.0 is denied by this cache's supply-chain policy/;
    await assert.rejects(box.cargo(['fetch', '--locked']), deniedMessage);
    const fresh = await lockedProject(t, proxy.sparseRegistry, box.projectDir);
    await assert.rejects(fresh.cargo(['fetch', '--locked']), deniedMessage);
  });

  test('prefetch does not store a denied version and reports why', async (t) => {
    const { upstream, dir } = await world(t);
    const deny = join(dir, 'deny');
    await writeFile(deny, 'pol-a@1.1.0\n');
    const proxy = await proxyWith(t, upstream, { denyFile: deny });
    const job = await proxy.instance.deps.prefetcher.run(
      {
        crates: [
          { name: 'pol-a', version: '1.1.0' },
          { name: 'pol-a', version: '1.0.0' },
        ],
        skipped: [],
        files: [],
      },
      'policy prefetch',
    );
    const failed = job.report.find((entry) => entry.version === '1.1.0');
    assert.equal(failed?.status, 'failed');
    assert.match(failed?.reason ?? '', /denied by this cache's supply-chain policy/);
    assert.equal(job.report.find((entry) => entry.version === '1.0.0')?.status, 'fetched');
    assert.equal(upstream.count('/dl/pol-a/1.1.0'), 0, 'never downloaded');
    assert.equal(
      proxy.instance.catalogue.has(crateKey({ name: 'pol-a', version: '1.1.0' })),
      false,
    );
  });

  test('prefetch reports a young version as waiting, without storing it', async (t) => {
    const { upstream } = await world(t);
    const proxy = await proxyWith(t, upstream, { minPublishAgeMs: 3 * DAY });
    const job = await proxy.instance.deps.prefetcher.run(
      { crates: [{ name: 'pol-a', version: '1.1.0' }], skipped: [], files: [] },
      'policy prefetch',
    );
    assert.equal(job.report[0]?.status, 'skipped');
    assert.match(job.report[0]?.reason ?? '', /^waiting: pol-a@1\.1\.0 was published at/);
    assert.equal(upstream.count('/dl/pol-a/1.1.0'), 0);
  });

  test('with --keep-removed a version upstream removed is still served', async (t) => {
    const { upstream } = await world(t);
    const proxy = await proxyWith(t, upstream, { keepRemoved: true });
    const url = `${proxy.url}/api/v1/crates/pol-a/1.0.0/download`;
    assert.equal((await httpGet(url)).status, 200);
    await upstream.remove('pol-a', '1.0.0');
    const index = await httpGet(`${proxy.url}/index/po/l-/pol-a`);
    assert.doesNotMatch(index.body.toString(), /"1\.0\.0"/, 'the revalidation saw it gone');
    assert.equal(proxy.instance.deps.removals, undefined);
    assert.equal((await httpGet(url)).status, 200, 'kept and served');
  });

  test('cargo-cacher prefetch exits 1 and names a denied version of a lock file', async (t) => {
    const { upstream, dir } = await world(t);
    const deny = join(dir, 'deny');
    await writeFile(deny, 'pol-a@1.1.0\n');
    const list = join(dir, 'list');
    await writeFile(list, 'pol-a=1.1.0\npol-a=1.0.0\n');
    const storage = join(dir, 'store');
    const run = await runCliCommand([
      'prefetch',
      list,
      '-i',
      storage,
      '-s',
      upstream.indexUrl,
      '--deny',
      deny,
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /failed: pol-a 1\.1\.0: pol-a@1\.1\.0 is denied by this cache's supply-chain policy/,
    );
    assert.doesNotMatch(run.stderr, /failed: pol-a 1\.0\.0/);
    assert.equal(upstream.count('/dl/pol-a/1.1.0'), 0);
  });

  test('an upstream removal stops the cached crate from being served after the next revalidation', async (t) => {
    const { upstream } = await world(t);
    const proxy = await proxyWith(t, upstream, {});
    const url = `${proxy.url}/api/v1/crates/pol-a/1.0.0/download`;
    assert.equal((await httpGet(url)).status, 200);
    assert.equal((await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`)).status, 200);
    await upstream.remove('pol-a', '1.0.0');
    // The next revalidation (TTL 0: the next request for the file) shows the line gone.
    const index = await httpGet(`${proxy.url}/index/po/l-/pol-a`);
    assert.doesNotMatch(index.body.toString(), /"1\.0\.0"/);
    await proxy.instance.deps.removals?.idle();
    const key = crateKey({ name: 'pol-a', version: '1.0.0' });
    assert.equal(proxy.instance.catalogue.has(key), false, 'purged');
    assert.equal((await httpGet(url)).status, 404);
    assert.equal(
      (await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`)).status,
      200,
      'versions still listed stay',
    );
    // The whole file gone: every version held goes.
    await upstream.remove('pol-a', '1.1.0');
    assert.equal((await httpGet(`${proxy.url}/index/po/l-/pol-a`)).status, 404);
    await proxy.instance.deps.removals?.idle();
    assert.deepEqual(proxy.instance.catalogue.heldVersions('pol-a'), []);
    const metrics = (await httpGet(`${proxy.url}/metrics`)).body.toString();
    assert.match(metrics, /cargo_cacher_policy_purged_total\{reason="removed"\} 2\b/);
  });
});

describe('supply-chain policy with cargo (git)', { timeout: 300_000 }, () => {
  async function gitProxy(t: TestContext, policy: Record<string, unknown>, clock = { ms: NOW }) {
    const { upstream, dir } = await world(t);
    const bare = await upstream.enableGit(join(dir, 'upstream'));
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      settings: { indexTtlMs: 0, policy },
      now: () => clock.ms,
    });
    t.after(() => proxy.close());
    const mirror = proxy.deps.git;
    assert.ok(mirror, 'the proxy serves git');
    await waitFor(() => mirror.ready, 20_000, 'the first clone of the git index');
    return { upstream, dir, proxy, mirror, clock };
  }

  async function resolveOverGit(t: TestContext, proxy: RunningProxy, deps: Record<string, string>) {
    const box = await makeCargoSandbox({ registry: proxy.gitRegistry, deps });
    t.after(() => box.remove());
    await box.cargo(['generate-lockfile']);
    return versionOf(await lockedPackages(box), 'pol-a');
  }

  test('the served git index lists young versions as yanked until they come of age', async (t) => {
    const { proxy, mirror, clock } = await gitProxy(t, { minPublishAgeMs: 3 * DAY });
    assert.equal(await resolveOverGit(t, proxy, { 'pol-a': '1' }), '1.0.0');
    clock.ms += 3 * DAY;
    assert.ok(await mirror.republish());
    assert.equal(await resolveOverGit(t, proxy, { 'pol-a': '1' }), '1.1.0');
  });

  test('an exempted young version resolves over git; withdrawn, a lock pinning it fails', async (t) => {
    const dir = await makeTempDir('policy-git-allow');
    t.after(() => removeTempDir(dir));
    const allow = join(dir, 'allow-young');
    await writeFile(allow, 'pol-a@1.1.0\n');
    const { proxy, mirror } = await gitProxy(t, {
      minPublishAgeMs: 3 * DAY,
      allowYoungFile: allow,
    });
    const box = await makeCargoSandbox({ registry: proxy.gitRegistry, deps: { 'pol-a': '1' } });
    t.after(() => box.remove());
    await box.cargo(['generate-lockfile']);
    assert.equal(versionOf(await lockedPackages(box), 'pol-a'), '1.1.0');
    await writeFile(allow, '');
    await waitFor(
      async () => (await httpGet(`${proxy.url}/api/v1/crates/pol-a/1.1.0/download`)).status === 403,
      10_000,
      'the emptied exemption file to be in force',
    );
    assert.ok(await mirror.republish());
    // cargo with its copy of the git index, and cargo cloning it afresh (where the version is
    // listed as yanked), both go on to the download and print our refusal.
    const refused = /got 403[\s\S]*pol-a@1\.1\.0 was published at 2026-11-20T11:00:00\.000Z/;
    await assert.rejects(box.cargo(['fetch', '--locked']), refused);
    const fresh = await lockedProject(t, proxy.gitRegistry, box.projectDir);
    await assert.rejects(fresh.cargo(['fetch', '--locked']), refused);
  });

  test('a deny-file edit rebuilds the served git index; a lock pinning the version is refused', async (t) => {
    const dir = await makeTempDir('policy-git-deny');
    t.after(() => removeTempDir(dir));
    const deny = join(dir, 'deny');
    await writeFile(deny, '');
    const { proxy } = await gitProxy(t, { denyFile: deny });
    const box = await makeCargoSandbox({ registry: proxy.gitRegistry, deps: { 'pol-a': '1' } });
    t.after(() => box.remove());
    await box.cargo(['generate-lockfile']);
    assert.equal(versionOf(await lockedPackages(box), 'pol-a'), '1.1.0');
    await writeFile(deny, 'pol-a@1.1.0\n');
    await waitFor(
      async () => (await resolveOverGit(t, proxy, { 'pol-a': '1' })) === '1.0.0',
      20_000,
      'the git index served with pol-a 1.1.0 yanked',
    );
    const fresh = await lockedProject(t, proxy.gitRegistry, box.projectDir);
    await assert.rejects(
      fresh.cargo(['fetch', '--locked']),
      /got 403[\s\S]*pol-a@1\.1\.0 is denied by this cache's supply-chain policy/,
    );
  });

  test('a git refresh that shows a version removed purges its cached crate', async (t) => {
    const { upstream, proxy, mirror } = await gitProxy(t, {});
    for (const version of ['1.0.0', '1.1.0']) {
      const url = `${proxy.url}/api/v1/crates/pol-a/${version}/download`;
      assert.equal((await httpGet(url)).status, 200);
    }
    await upstream.remove('pol-a', '1.1.0');
    assert.ok(await mirror.refresh());
    await waitFor(
      () => proxy.instance.catalogue.heldVersions('pol-a').join() === '1.0.0',
      10_000,
      'pol-a 1.1.0 to be purged',
    );
    await upstream.remove('pol-a', '1.0.0');
    assert.ok(await mirror.refresh());
    await waitFor(
      () => proxy.instance.catalogue.heldVersions('pol-a').length === 0,
      10_000,
      'every version of pol-a to be purged once its file is deleted',
    );
  });

  test('the full mirror skips denied and young versions, and takes a young one once of age', async (t) => {
    const dir = await makeTempDir('policy-mirror');
    t.after(() => removeTempDir(dir));
    const deny = join(dir, 'deny');
    await writeFile(deny, 'pol-old\n');
    const { upstream, dir: upstreamDir } = await world(t);
    const bare = await upstream.enableGit(join(upstreamDir, 'upstream'));
    const clock = { ms: NOW };
    const proxy = await startProxy({
      upstream,
      gitUrl: bare,
      settings: { all: true, policy: { minPublishAgeMs: 3 * DAY, denyFile: deny } },
      now: () => clock.ms,
    });
    t.after(() => proxy.close());
    const mirror = proxy.instance.fullMirror;
    assert.ok(mirror);
    await waitFor(
      () => proxy.instance.deps.jobs.list().some((job) => job.state === 'done'),
      20_000,
      'the first mirror pass',
    );
    await mirror.idle();
    const [job] = proxy.instance.deps.jobs.list();
    const report = proxy.instance.deps.jobs.get(job?.id as string)?.report ?? [];
    const statusOf = (name: string, version: string) =>
      report.find((entry) => entry.name === name && entry.version === version);
    assert.equal(statusOf('pol-a', '1.0.0')?.status, 'fetched');
    assert.equal(statusOf('pol-a', '1.1.0')?.status, 'skipped');
    assert.match(statusOf('pol-a', '1.1.0')?.reason ?? '', /^waiting: /);
    assert.equal(statusOf('pol-old', '0.1.0')?.status, 'skipped');
    assert.match(statusOf('pol-old', '0.1.0')?.reason ?? '', /denied/);
    assert.deepEqual(proxy.instance.catalogue.heldVersions('pol-old'), []);
    clock.ms += 3 * DAY;
    mirror.takeAged();
    await mirror.idle();
    assert.deepEqual(proxy.instance.catalogue.heldVersions('pol-a').sort(), ['1.0.0', '1.1.0']);
  });
});
