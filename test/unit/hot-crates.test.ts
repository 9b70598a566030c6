import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { HotCrates } from '../../src/cache/hot-crates.ts';

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
});
