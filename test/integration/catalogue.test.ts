import assert from 'node:assert/strict';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { Catalogue, cataloguePath } from '../../src/cache/catalogue.ts';
import { RECONCILED_AT } from '../../src/jobs/reconcile.ts';
import { VERIFY_POSITION, verifyCache } from '../../src/jobs/verify.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { nodeSqliteDriver } from '../../src/sqlite.ts';
import { runCliCommand, startCli } from '../helpers/cli-process.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const NAMES = ['cat-a', 'cat-b', 'cat-c', 'cat-d', 'cat-e'];

async function upstreamWithCrates(t: TestContext): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream({
    crates: NAMES.map((name, i) => ({ name, version: '1.0.0', padBytes: 10_000 + i * 1000 })),
  });
  t.after(() => upstream.close());
  return upstream;
}

async function storageDir(t: TestContext): Promise<string> {
  const dir = await makeTempDir('catalogue');
  t.after(() => removeTempDir(dir));
  return dir;
}

function download(url: string, name: string) {
  return httpGet(`${url}/api/v1/crates/${name}/1.0.0/download`);
}

/** What the store holds, by walking its directories: the truth the catalogue must match. */
async function listStore(dir: string, area: string): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  const names = await readdir(join(dir, area), { recursive: true }).catch(() => []);
  for (const name of names.map(String)) {
    const info = await stat(join(dir, area, name));
    if (info.isFile()) held.set(`${area}/${name.split('\\').join('/')}`, info.size);
  }
  return held;
}

/** Asserts that the catalogue's rows and totals are exactly what the store holds. */
async function assertCatalogueMatchesStore(dir: string): Promise<void> {
  const catalogue = Catalogue.open(dir, { readonly: true });
  try {
    const totals = catalogue.totals();
    for (const area of ['crates', 'index'] as const) {
      const held = await listStore(dir, area);
      const rows = catalogue.rowsBetween(`${area}/`, `${area}0`, 10_000);
      assert.deepEqual(
        new Map(rows.map((row) => [row.key, row.size])),
        held,
        `the ${area} rows are what the store holds`,
      );
      const bytes = [...held.values()].reduce((a, b) => a + b, 0);
      assert.deepEqual(totals[area], { objects: held.size, bytes }, `the ${area} totals`);
    }
  } finally {
    catalogue.close();
  }
}

function metricValue(metrics: string, name: string, area: string): number {
  const match = new RegExp(`^${name}\\{area="${area}"\\} (\\d+)`, 'm').exec(metrics);
  assert.ok(match, `${name}{area="${area}"} is exported`);
  return Number(match[1]);
}

describe('catalogue', { timeout: 120_000 }, () => {
  test('is right after a kill -9 between a publish and its record', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const dir = await storageDir(t);
    const start = () => startCli(['-i', dir, '-s', upstream.indexUrl, '--no-git']);
    let cli = await start();
    t.after(() => cli.kill9());
    assert.equal((await download(cli.url, 'cat-a')).status, 200);
    await waitFor(() => openMeta(dir, RECONCILED_AT) !== undefined, 10_000, 'first reconcile');
    // Another connection holds the catalogue's write lock: the proxy publishes the crate, then
    // waits for the lock to record it, and is killed right there.
    const blocker = nodeSqliteDriver(cataloguePath(dir), { readonly: false });
    blocker.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE');
    const pending = download(cli.url, 'cat-b').catch(() => undefined);
    const published = join(dir, ...crateKey({ name: 'cat-b', version: '1.0.0' }).split('/'));
    await waitFor(() => exists(published), 10_000, 'the crate to be published');
    await cli.kill9();
    await pending;
    blocker.exec('ROLLBACK');
    blocker.close();
    assert.equal(
      openHas(dir, crateKey({ name: 'cat-b', version: '1.0.0' })),
      false,
      'not recorded',
    );

    // Restarted: the killed run left its session open, so the new one reconciles at once.
    const before = Number(openMeta(dir, RECONCILED_AT));
    cli = await start();
    const hit = await download(cli.url, 'cat-b');
    assert.equal(hit.headers['x-cache-status'], 'HIT');
    await waitFor(
      () => Number(openMeta(dir, RECONCILED_AT)) > before,
      10_000,
      'the reconcile after an unclean stop',
    );
    await cli.stop();
    await assertCatalogueMatchesStore(dir);

    // Published behind the catalogue's back again, then repaired by `cargo-cacher reconcile`.
    cli = await start();
    assert.equal((await download(cli.url, 'cat-c')).status, 200);
    await cli.stop();
    const c = crateKey({ name: 'cat-c', version: '1.0.0' });
    deleteRow(dir, c);
    await rm(join(dir, ...crateKey({ name: 'cat-a', version: '1.0.0' }).split('/')));
    const result = await runCliCommand(['reconcile', '-i', dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /adopted 1, dropped 1/);
    await assertCatalogueMatchesStore(dir);
    assert.equal(upstream.count('/dl/cat-c/'), 1, 'nothing was downloaded again');
  });

  test('a reconcile adopts a store written without a catalogue, with no re-download', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const dir = await storageDir(t);
    const first = await startProxy({ upstream, storageDir: dir });
    for (const name of NAMES) assert.equal((await download(first.url, name)).status, 200);
    await first.close();
    // What an earlier cargo-cacher leaves: the store and the statistics, no catalogue.
    for (const suffix of ['', '-wal', '-shm'])
      await rm(cataloguePath(dir) + suffix, { force: true });
    const fetched = upstream.count('/dl/');
    const proxy = await startProxy({ upstream, storageDir: dir });
    t.after(() => proxy.close());
    await waitFor(
      () => proxy.instance.catalogue.getMeta(RECONCILED_AT) !== undefined,
      10_000,
      'the adopting reconcile',
    );
    await assertCatalogueMatchesStore(dir);
    const metrics = (await httpGet(`${proxy.url}/metrics`)).body.toString('utf8');
    const held = await listStore(dir, 'crates');
    const bytes = [...held.values()].reduce((a, b) => a + b, 0);
    assert.equal(metricValue(metrics, 'cargo_cacher_cache_size_bytes', 'crates'), bytes);
    assert.equal(metricValue(metrics, 'cargo_cacher_cache_objects', 'crates'), NAMES.length);
    for (const name of NAMES) {
      assert.equal((await download(proxy.url, name)).headers['x-cache-status'], 'HIT');
    }
    assert.equal(upstream.count('/dl/'), fetched, 'no crate was downloaded again');
    // Adopted crates keep when they were last served (from the statistics): the LRU order holds.
    const row = proxy.instance.catalogue.get(crateKey({ name: 'cat-a', version: '1.0.0' }));
    assert.ok(row?.lastServedAt, 'the last-served time came over from the statistics');
  });

  test('sizes are right at the first scrape after a restart, without listing the store', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const dir = await storageDir(t);
    const first = await startProxy({ upstream, storageDir: dir });
    for (const name of NAMES) assert.equal((await download(first.url, name)).status, 200);
    await first.close();
    const held = await listStore(dir, 'crates');
    const index = await listStore(dir, 'index');
    const proxy = await startProxy({ upstream, storageDir: dir });
    t.after(() => proxy.close());
    // The store's listing is never read on this start: a listing would fail the scrape.
    const store = proxy.instance.deps.store;
    store.list = () => {
      throw new Error('the store was listed');
    };
    const metrics = (await httpGet(`${proxy.url}/metrics`)).body.toString('utf8');
    const sum = (sizes: Map<string, number>) => [...sizes.values()].reduce((a, b) => a + b, 0);
    assert.equal(metricValue(metrics, 'cargo_cacher_cache_size_bytes', 'crates'), sum(held));
    assert.equal(metricValue(metrics, 'cargo_cacher_cache_objects', 'crates'), held.size);
    assert.equal(metricValue(metrics, 'cargo_cacher_cache_size_bytes', 'index'), sum(index));
    const stats = JSON.parse((await httpGet(`${proxy.url}/api/v1/stats`)).body.toString('utf8'));
    assert.equal(stats.cache.crates.bytes, sum(held));
    const cli = await runCliCommand(['stats', '-i', dir, '--json']);
    assert.equal(JSON.parse(cli.stdout).cache.crates.objects, held.size);
  });

  test('verify resumes where it stopped after a restart', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const dir = await storageDir(t);
    const keys = NAMES.map((name) => crateKey({ name, version: '1.0.0' })).sort();
    const first = await startProxy({ upstream, storageDir: dir });
    for (const name of NAMES) assert.equal((await download(first.url, name)).status, 200);
    const checked: string[] = [];
    const stop = new AbortController();
    await verifyCache(
      watched(first, checked, () => checked.length === 2 && stop.abort()),
      {
        mode: 'report',
        resume: true,
        signal: stop.signal,
      },
    );
    assert.deepEqual(checked, keys.slice(0, 2));
    assert.equal(first.instance.catalogue.getMeta(VERIFY_POSITION), keys[1]);
    await first.close();

    const second = await startProxy({ upstream, storageDir: dir });
    t.after(() => second.close());
    const rest: string[] = [];
    const report = await verifyCache(watched(second, rest), { mode: 'report', resume: true });
    assert.deepEqual(rest, keys.slice(2), 'the pass went on after the last crate checked');
    assert.equal(report.problems.length, 0);
    assert.equal(second.instance.catalogue.getMeta(VERIFY_POSITION), undefined, 'pass complete');
    const verified = second.instance.catalogue.get(keys[4] as string);
    assert.equal(verified?.sha256, upstream.crate('cat-e', '1.0.0').checksum);
  });
});

/** The proxy's verify inputs, with every crate opened for hashing noted in `seen`. */
function watched(proxy: RunningProxy, seen: string[], after: () => void = () => undefined) {
  const { store, index, crates, log } = proxy.instance.deps;
  const observed = Object.create(store) as typeof store;
  observed.open = async (key) => {
    const opened = await store.open(key);
    seen.push(key);
    after();
    return opened;
  };
  return { store: observed, catalogue: proxy.instance.catalogue, index, crates, log };
}

/** Runs `read` on the catalogue of `dir`, opened read-only (a server may be running on it). */
function readCatalogue<T>(dir: string, read: (catalogue: Catalogue) => T): T {
  const catalogue = Catalogue.open(dir, { readonly: true });
  try {
    return read(catalogue);
  } finally {
    catalogue.close();
  }
}

function openMeta(dir: string, name: string): string | undefined {
  return readCatalogue(dir, (catalogue) => catalogue.getMeta(name));
}

function openHas(dir: string, key: string): boolean {
  return readCatalogue(dir, (catalogue) => catalogue.has(key));
}

/** Removes a row behind the catalogue's back: what a publish killed before its record leaves. */
function deleteRow(dir: string, key: string): void {
  const catalogue = Catalogue.open(dir, { flushIntervalMs: 0 });
  try {
    catalogue.recordDeleted(key);
  } finally {
    catalogue.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
