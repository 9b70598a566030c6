import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { evictOnChange, HotCrates } from '../../src/cache/hot-crates.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const KEY = 'crates/ho/t-/hot-a/hot-a-1.0.0.crate';
const BODY = Buffer.from('crate bytes');
const SHA = createHash('sha256').update(BODY).digest('hex');

describe('HotCrates', () => {
  test('holds a crate whose sha256 matches, and returns the bytes', async () => {
    const hot = new HotCrates();
    const body = hot.keep(KEY, BODY, SHA);
    assert.deepEqual(body, BODY);
    assert.deepEqual(hot.get(KEY), { body: BODY, checksum: SHA });
  });

  test('serves but never holds bytes that fail verification', async () => {
    const hot = new HotCrates();
    const body = hot.keep(KEY, BODY, '0'.repeat(64));
    assert.deepEqual(body, BODY);
    assert.equal(hot.get(KEY), undefined);
  });

  test('accepts only crates up to its size limit, and stays within its budget', async () => {
    const hot = new HotCrates(30, 20);
    assert.equal(hot.accepts(20), true);
    assert.equal(hot.accepts(21), false);
    assert.equal(hot.accepts(undefined), false);
    const big = new HotCrates(BODY.length + 256, 1024);
    big.keep('a', BODY, SHA);
    big.keep('b', BODY, SHA);
    assert.equal(big.get('a'), undefined, 'the older copy made room');
    assert.ok(big.get('b'));
  });

  test('a store seen through evictOnChange drops copies it deletes or replaces', async (t) => {
    const dir = await makeTempDir('hot-crates');
    t.after(() => removeTempDir(dir));
    const raw = new FsBlobStore(dir);
    await raw.init();
    const hot = new HotCrates();
    const store = evictOnChange(raw, hot);
    assert.equal(store.location, raw.location, 'other members pass through');
    await store.put(KEY, BODY);
    hot.keep(KEY, BODY, SHA);
    await store.delete(KEY);
    assert.equal(hot.get(KEY), undefined, 'deleted');
    assert.equal(await raw.stat(KEY), undefined);
    hot.keep(KEY, BODY, SHA);
    await store.put(KEY, BODY);
    assert.equal(hot.get(KEY), undefined, 'replaced');
    assert.equal((await store.stat(KEY))?.size, BODY.length);
  });
});
