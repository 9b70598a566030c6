import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { Catalogue, PAGE_ROWS } from '../../src/cache/catalogue.ts';
import { HotCrates } from '../../src/cache/hot-crates.ts';
import { trackChanges } from '../../src/cache/tracked-store.ts';
import { sweep } from '../../src/jobs/gc.ts';
import { reconcile } from '../../src/jobs/reconcile.ts';
import { createLogger } from '../../src/logger.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const log = createLogger({ level: 'silent', format: 'json' });
const key = (name: string, version = '1.0.0') => crateKey({ name, version });

function open(t: TestContext, options: { now?: () => number; pinned?: Set<string> } = {}) {
  const catalogue = Catalogue.open(':memory:', { flushIntervalMs: 0, ...options });
  t.after(() => catalogue.close());
  return catalogue;
}

async function fsStore(t: TestContext): Promise<FsBlobStore> {
  const dir = await makeTempDir('catalogue-unit');
  t.after(() => removeTempDir(dir));
  const store = new FsBlobStore(dir);
  await store.init();
  return store;
}

describe('Catalogue', () => {
  test('keeps totals per area through stores, replacements and deletes', (t) => {
    const catalogue = open(t);
    catalogue.recordStored(key('serde'), { size: 100, sha256: 'a' });
    catalogue.recordStored(key('serde', '2.0.0'), { size: 50 });
    catalogue.recordStored('index/se/rd/serde', { size: 7 });
    catalogue.recordStored('quarantine/x', { size: 3 });
    catalogue.recordStored(key('serde'), { size: 120, sha256: 'b' });
    assert.deepEqual(catalogue.totals(), {
      crates: { objects: 2, bytes: 170 },
      index: { objects: 1, bytes: 7 },
      other: { objects: 1, bytes: 3 },
      toolchains: { objects: 0, bytes: 0 },
    });
    catalogue.recordDeleted(key('serde', '2.0.0'));
    catalogue.recordDeleted(key('never-stored'));
    assert.deepEqual(catalogue.totals().crates, { objects: 1, bytes: 120 });
    assert.equal(catalogue.get(key('serde'))?.sha256, 'b');
  });

  test('answers which versions of a crate are held', (t) => {
    const catalogue = open(t);
    for (const version of ['1.0.0', '1.0.1', '2.0.0-rc.1']) {
      catalogue.recordStored(key('serde', version), { size: 1 });
    }
    catalogue.recordStored(key('serde_json'), { size: 1 });
    catalogue.recordStored('index/se/rd/serde', { size: 1 });
    assert.deepEqual(catalogue.heldVersions('Serde').sort(), ['1.0.0', '1.0.1', '2.0.0-rc.1']);
    assert.deepEqual(catalogue.heldVersions('tokio'), []);
  });

  test('lists unpinned crates least recently used first, across pages', (t) => {
    const clock = { ms: 1_000 };
    const catalogue = open(t, { now: () => clock.ms, pinned: new Set(['c-0@1.0.0']) });
    const count = PAGE_ROWS * 2 + 5;
    for (let i = 0; i < count; i++) {
      clock.ms += 1;
      catalogue.recordStored(key(`c-${i}`), { size: 10 });
    }
    // Serving c-1 makes it the most recently used; served times are written at the flush.
    clock.ms += 1;
    catalogue.noteServed(key('c-1'), 10);
    const order = [...catalogue.leastRecentlyUsed('crates')].map((object) => object.name);
    assert.equal(order.length, count - 1, 'the pinned crate is left out');
    assert.equal(order[0], 'c-2');
    assert.equal(order.at(-1), 'c-1');
    assert.equal(new Set(order).size, order.length, 'no row twice across page boundaries');
  });

  test('records a crate first met when served (stored by another instance)', (t) => {
    const catalogue = open(t, { now: () => 5_000 });
    catalogue.noteServed(key('met'), 42);
    assert.equal(catalogue.has(key('met')), false, 'not before the flush');
    catalogue.flush();
    const row = catalogue.get(key('met'));
    assert.equal(row?.size, 42);
    assert.equal(row?.lastServedAt, 5_000);
    assert.deepEqual(catalogue.totals().crates, { objects: 1, bytes: 42 });
  });

  test('a tracked store records publishes and deletes, and drops copies held in memory', async (t) => {
    const raw = await fsStore(t);
    const catalogue = open(t);
    const hot = new HotCrates();
    const store = trackChanges(raw, { catalogue, hotCrates: hot, log });
    const body = Buffer.from('crate bytes');
    const sha = createHash('sha256').update(body).digest('hex');
    assert.equal(store.location, raw.location, 'other members pass through');
    await store.put(key('hot'), body);
    assert.deepEqual(
      { size: catalogue.get(key('hot'))?.size, sha256: catalogue.get(key('hot'))?.sha256 },
      { size: body.length, sha256: sha },
    );
    hot.keep(key('hot'), body, sha);
    await store.put(key('hot'), body);
    assert.equal(hot.get(key('hot')), undefined, 'a replaced crate is dropped from memory');
    hot.keep(key('hot'), body, sha);
    await store.delete(key('hot'));
    assert.equal(hot.get(key('hot')), undefined, 'a deleted crate is dropped from memory');
    assert.equal(catalogue.has(key('hot')), false);
    assert.equal(await raw.stat(key('hot')), undefined);
  });

  test('a sweep reads only what it removes: expired first, then least recently used to fit', async (t) => {
    const clock = { ms: 1_000_000 };
    const raw = await fsStore(t);
    const catalogue = open(t, { now: () => clock.ms });
    const store = trackChanges(raw, { catalogue, log });
    for (let i = 0; i < 10; i++) {
      clock.ms += 1_000;
      await store.put(key(`s-${i}`), Buffer.alloc(100));
    }
    const report = await sweep(
      { store, catalogue },
      { maxSizeBytes: 650, expireAfterMs: 7_500, pinned: new Set(['s-0@1.0.0']) },
      clock.ms,
    );
    assert.deepEqual(
      report.removed.map((r) => [r.key, r.reason]),
      [
        [key('s-1'), 'expired'],
        [key('s-2'), 'over-budget'],
        [key('s-3'), 'over-budget'],
        [key('s-4'), 'over-budget'],
      ],
    );
    assert.equal(report.remainingBytes, 600);
    assert.equal(report.pinnedBytes, 100);
    assert.deepEqual(catalogue.totals().crates, { objects: 6, bytes: 600 });
  });
});

describe('reconcile', () => {
  test('adopts, drops and resizes across page boundaries, and leaves the rest alone', async (t) => {
    const raw = await fsStore(t);
    const clock = { ms: 10_000 };
    const catalogue = open(t, { now: () => clock.ms });
    const store = trackChanges(raw, { catalogue, log });
    const count = PAGE_ROWS + 200;
    for (let i = 0; i < count; i++) {
      const name = `r-${String(i).padStart(5, '0')}`;
      // Every third crate is written behind the catalogue's back (a publish never recorded).
      await (i % 3 === 0 ? raw : store).put(key(name), Buffer.alloc(10 + (i % 7)));
    }
    // Rows of objects that are gone, and one whose object changed size.
    catalogue.recordStored(key('gone-a'), { size: 5 });
    catalogue.recordStored(key('zz-gone'), { size: 5 });
    await raw.put(key('r-00001'), Buffer.alloc(99));
    clock.ms += 1_000;
    const report = await reconcile({ store: raw, catalogue, log, pauseMs: 0 });
    assert.equal(report.listed, count);
    assert.equal(report.adopted, Math.ceil(count / 3));
    assert.equal(report.dropped, 2);
    assert.equal(report.resized, 1);
    const rows = catalogue.rowsBetween('crates/', 'crates0', count + 10);
    const listed: [string, number][] = [];
    for await (const blob of raw.list('crates')) listed.push([blob.key, blob.size]);
    assert.deepEqual(
      rows.map((row) => [row.key, row.size]),
      listed,
    );
    const bytes = listed.reduce((sum, [, size]) => sum + size, 0);
    assert.deepEqual(catalogue.totals().crates, { objects: count, bytes });
    // A second pass finds nothing to do.
    const again = await reconcile({ store: raw, catalogue, log, pauseMs: 0 });
    assert.deepEqual([again.adopted, again.dropped, again.resized], [0, 0, 0]);
  });
});
