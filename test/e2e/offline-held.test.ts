/**
 * The index of what is held, with the real cargo: an upstream lists `zzbar 0.1.0` and `0.1.1`
 * and the cache holds only `0.1.0`. With upstream down, with `--offline`, and with
 * `--only-held`, index files list only held versions, so a fresh resolve picks `0.1.0` and
 * its download works, over the sparse and the git protocol. An air-gapped instance with no
 * upstream git index serves one built from the index files it holds.
 */
import assert from 'node:assert/strict';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { etagOfBody } from '../../src/cache/index-record.ts';
import { servedCommit } from '../../src/git/overlay.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { lockedPackages, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const ZZBAR = '/index/zz/ba/zzbar';

async function world(t: TestContext) {
  const upstream = await startFakeUpstream({
    crates: [
      { name: 'zzbar', version: '0.1.0' },
      { name: 'zzbar', version: '0.1.1' },
      { name: 'zzother', version: '1.0.0' },
    ],
  });
  t.after(() => upstream.close());
  const dir = await makeTempDir('offline-held');
  t.after(() => removeTempDir(dir));
  return { upstream, dir, storageDir: join(dir, 'store') };
}

/** Makes the cache hold `zzbar 0.1.0` only, with both index files cached. */
async function holdOldZzbar(proxy: RunningProxy): Promise<void> {
  assert.equal((await httpGet(`${proxy.url}${ZZBAR}`)).status, 200);
  assert.equal((await httpGet(`${proxy.url}/index/zz/ot/zzother`)).status, 200);
  const download = await httpGet(`${proxy.url}/api/v1/crates/zzbar/0.1.0/download`);
  assert.equal(download.status, 200);
}

/**
 * A fresh cargo (empty CARGO_HOME) resolves `zzbar = "0.1"`, and fetches it unless told not to
 * (a fetch makes the version held).
 */
async function resolveAndFetch(
  t: TestContext,
  registry: string,
  fetch = true,
): Promise<string | undefined> {
  const box = await makeCargoSandbox({ registry, deps: { zzbar: '0.1' } });
  t.after(() => box.remove());
  await box.cargo(['generate-lockfile']);
  if (fetch) await box.cargo(['fetch']);
  return (await lockedPackages(box)).find((pkg) => pkg.name === 'zzbar')?.version;
}

function served(upstream: FakeUpstream, ...versions: string[]): string {
  return versions.map((version) => `${upstream.crate('zzbar', version).indexLine}\n`).join('');
}

describe('the index of what is held (sparse)', { timeout: 300_000 }, () => {
  test('with upstream down, a fresh resolve picks the held version', async (t) => {
    const { upstream } = await world(t);
    const proxy = await startProxy({ upstream, settings: { indexTtlMs: 0 } });
    t.after(() => proxy.close());
    await holdOldZzbar(proxy);
    const online = await httpGet(`${proxy.url}${ZZBAR}`);
    assert.equal(online.body.toString(), served(upstream, '0.1.0', '0.1.1'), 'all while up');
    await upstream.stop();
    const down = await httpGet(`${proxy.url}${ZZBAR}`);
    assert.equal(down.status, 200);
    assert.equal(down.body.toString(), served(upstream, '0.1.0'), 'upstream bytes, held only');
    assert.equal(down.headers.etag, etagOfBody(down.body), 'the ETag of the bytes served');
    const nothingHeld = await httpGet(`${proxy.url}/index/zz/ot/zzother`);
    assert.equal(nothingHeld.status, 404, 'a crate with nothing held is not listed');
    assert.equal(await resolveAndFetch(t, proxy.sparseRegistry), '0.1.0');
    await upstream.restart();
    const back = await httpGet(`${proxy.url}${ZZBAR}`);
    assert.equal(back.body.toString(), served(upstream, '0.1.0', '0.1.1'), 'all once back');
  });

  test('with --offline, a fresh resolve picks the held version', async (t) => {
    const { upstream, storageDir } = await world(t);
    const first = await startProxy({ upstream, storageDir });
    await holdOldZzbar(first);
    await first.close();
    const offline = await startProxy({ storageDir, settings: { offline: true } });
    t.after(() => offline.close());
    const index = await httpGet(`${offline.url}${ZZBAR}`);
    assert.equal(index.body.toString(), served(upstream, '0.1.0'));
    assert.equal((await httpGet(`${offline.url}/index/zz/ot/zzother`)).status, 404);
    assert.equal(await resolveAndFetch(t, offline.sparseRegistry), '0.1.0');
    assert.equal(upstream.count('/dl/zzbar/0.1.1'), 0);
  });

  test('--only-held lists what is held, refuses other downloads, and a prefetch adds to it', async (t) => {
    const { upstream } = await world(t);
    const proxy = await startProxy({ upstream, settings: { indexTtlMs: 0, onlyHeld: true } });
    t.after(() => proxy.close());
    assert.equal((await httpGet(`${proxy.url}${ZZBAR}`)).status, 404, 'nothing held yet');
    const job = await proxy.instance.deps.prefetcher.run(
      { crates: [{ name: 'zzbar', version: '0.1.0' }], skipped: [], files: [] },
      'approved',
    );
    assert.equal(job.report[0]?.status, 'fetched');
    assert.equal(
      (await httpGet(`${proxy.url}${ZZBAR}`)).body.toString(),
      served(upstream, '0.1.0'),
    );
    const refused = await httpGet(`${proxy.url}/api/v1/crates/zzbar/0.1.1/download`);
    assert.equal(refused.status, 404);
    assert.match(refused.body.toString(), /zzbar@0\.1\.1 is not held .*--only-held/);
    assert.equal(upstream.count('/dl/zzbar/0.1.1'), 0, 'nothing fetched for a client');
    assert.equal(await resolveAndFetch(t, proxy.sparseRegistry), '0.1.0');
  });
});

describe('the index of what is held (git)', { timeout: 300_000 }, () => {
  async function gitWorld(t: TestContext) {
    const base = await world(t);
    const bare = await base.upstream.enableGit(join(base.dir, 'upstream'));
    return { ...base, bare };
  }

  async function startGitProxy(t: TestContext, options: Parameters<typeof startProxy>[0]) {
    const proxy = await startProxy(options);
    t.after(() => proxy.close());
    const mirror = proxy.deps.git;
    assert.ok(mirror, 'the proxy serves git');
    await waitFor(() => mirror.ready, 20_000, 'the git index to be served');
    return { proxy, mirror };
  }

  test('with upstream down, a fresh resolve over git picks the held version', async (t) => {
    const { upstream, bare } = await gitWorld(t);
    const { proxy, mirror } = await startGitProxy(t, { upstream, gitUrl: bare });
    await holdOldZzbar(proxy);
    assert.equal(await resolveAndFetch(t, proxy.gitRegistry, false), '0.1.1', 'all while up');
    await upstream.stop();
    await rename(bare, `${bare}.gone`);
    assert.equal(await mirror.refresh(), false, 'the refresh fails');
    assert.equal(mirror.upstreamReachable, false);
    assert.equal(await resolveAndFetch(t, proxy.gitRegistry), '0.1.0');
    // Upstream back: the next refresh serves everything again.
    await rename(`${bare}.gone`, bare);
    await upstream.restart();
    assert.equal(await mirror.refresh(), true);
    assert.equal(await resolveAndFetch(t, proxy.gitRegistry, false), '0.1.1');
  });

  test('with --offline, a fresh resolve over git picks the held version', async (t) => {
    const { upstream, bare, storageDir } = await gitWorld(t);
    const first = await startGitProxy(t, { upstream, gitUrl: bare, storageDir });
    await holdOldZzbar(first.proxy);
    await first.proxy.close();
    const { proxy } = await startGitProxy(t, {
      gitUrl: bare,
      storageDir,
      settings: { offline: true },
    });
    assert.equal(await resolveAndFetch(t, proxy.gitRegistry), '0.1.0');
  });

  test('offline with no upstream git index, the git index is built from the held files', async (t) => {
    const { upstream, storageDir, dir } = await world(t);
    // Filled over sparse only: no git index was ever mirrored here.
    const first = await startProxy({ upstream, storageDir });
    await holdOldZzbar(first);
    await first.close();
    await upstream.stop();
    const { proxy, mirror } = await startGitProxy(t, {
      gitUrl: join(dir, 'no-such-upstream.git'),
      storageDir,
      settings: { offline: true },
    });
    assert.equal(mirror.hasUpstreamIndex, false);
    assert.equal(await resolveAndFetch(t, proxy.gitRegistry), '0.1.0');
    // What is held changes (a crate deleted here; an import adds them the same way): the git
    // index is rebuilt for it without a restart.
    const servedBefore = await servedCommit(mirror.gitDir);
    await proxy.deps.store.delete(crateKey({ name: 'zzbar', version: '0.1.0' }));
    await waitFor(
      async () => (await servedCommit(mirror.gitDir)) !== servedBefore,
      10_000,
      'the git index rebuilt without zzbar',
    );
    const box = await makeCargoSandbox({ registry: proxy.gitRegistry, deps: { zzbar: '0.1' } });
    t.after(() => box.remove());
    await assert.rejects(box.cargo(['generate-lockfile']), /no matching package named `zzbar`/);
  });
});
