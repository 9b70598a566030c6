/**
 * One contract, two stores: every case runs against FsBlobStore on a temp directory and
 * S3BlobStore on s3rver (each case on a fresh directory or key prefix).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createBackends } from '../helpers/blob-backends.ts';
import { collect, generate, listKeys, sha256, startMemoryMeter } from '../helpers/blob-streams.ts';

const MiB = 1024 * 1024;

const backends = createBackends();
before(() => backends.start());
after(() => backends.stop());

for (const backend of backends.all) {
  describe(`${backend.name} contract`, () => {
    test('stores, reads, opens, stats, lists and deletes blobs', async () => {
      const store = await (await backend.backing()).open();
      const body = Buffer.from('{"name":"foo"}\n');
      const put = await store.put('index/3/f/foo', body);
      assert.deepEqual(put, { size: body.length, sha256: sha256(body) });
      assert.deepEqual(await store.read('index/3/f/foo'), body);
      const stat = await store.stat('index/3/f/foo');
      assert.equal(stat?.size, body.length);
      assert.ok(Math.abs((stat?.mtimeMs ?? 0) - Date.now()) < 60_000);
      const opened = await store.open('index/3/f/foo');
      assert.equal(opened?.size, body.length);
      assert.deepEqual(await collect(opened?.stream), body);
      await store.put('crates/3/f/foo/foo-1.0.0.crate', Readable.from([Buffer.from('crate')]));
      assert.deepEqual(await listKeys(store, 'crates'), ['crates/3/f/foo/foo-1.0.0.crate']);
      assert.deepEqual(await listKeys(store, ''), [
        'crates/3/f/foo/foo-1.0.0.crate',
        'index/3/f/foo',
      ]);
      await store.delete('index/3/f/foo');
      await store.delete('index/3/f/foo');
      assert.equal(await store.read('index/3/f/foo'), undefined);
      assert.equal(await store.open('index/3/f/foo'), undefined);
      assert.equal(await store.stat('index/3/f/foo'), undefined);
      assert.deepEqual(await listKeys(store, 'index'), []);
    });

    test('lists every blob below a prefix, page after page', async () => {
      const store = await (await backend.backing()).open();
      const keys = Array.from({ length: 8 }, (_, i) => `crates/${i % 2}/k${i}`).sort();
      for (const key of keys) await store.put(key, Buffer.from(key));
      await store.put('index/other', Buffer.from('x'));
      assert.deepEqual(await listKeys(store, 'crates'), keys);
      assert.deepEqual(
        await listKeys(store, 'crates/1/'),
        keys.filter((k) => k.includes('/1/')),
      );
      assert.deepEqual(await listKeys(store, 'nothing'), []);
    });

    test('lists in key order (byte order), directories among the names they sort by', async () => {
      const store = await (await backend.backing()).open();
      // `a-b/…` < `a/…` < `ab` < `a_b` in byte order: '-' (0x2d) < '/' (0x2f) < 'b' < '_'.
      const keys = ['crates/a/x', 'crates/ab', 'crates/a-b/x', 'crates/a_b', 'crates/a/1.0.0+b'];
      for (const key of keys) await store.put(key, Buffer.from(key));
      const sorted = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const listed = await listKeys(store, 'crates');
      if (backend.name.startsWith('S3')) {
        // AWS S3 lists in UTF-8 binary order; s3rver, the stand-in here, pages by another
        // order: only that every key comes once can be held against it.
        assert.deepEqual([...listed].sort(), [...sorted].sort());
      } else {
        assert.deepEqual(listed, sorted);
      }
    });

    test('a checksum mismatch rejects and leaves nothing visible', async () => {
      const backing = await backend.backing();
      const store = await backing.open();
      const key = 'crates/3/b/bad/bad-1.0.0.crate';
      await assert.rejects(
        store.put(key, Readable.from([Buffer.from('not what the index says')]), {
          expectedSha256: sha256(Buffer.from('the real crate')),
        }),
        { code: 'CARGO_CACHER_CHECKSUM_MISMATCH' },
      );
      assert.equal(await store.stat(key), undefined);
      assert.deepEqual(await listKeys(store, ''), []);
      assert.equal(await backing.leftovers(), 0);
    });

    test('a failed overwrite keeps the old blob whole', async () => {
      const store = await (await backend.backing()).open();
      const key = 'crates/3/o/old/old-1.0.0.crate';
      const good = Buffer.from('the real crate');
      await store.put(key, Readable.from([good]), { expectedSha256: sha256(good) });
      await assert.rejects(
        store.put(key, Readable.from([Buffer.from('tampered')]), { expectedSha256: sha256(good) }),
        { code: 'CARGO_CACHER_CHECKSUM_MISMATCH' },
      );
      assert.deepEqual(await store.read(key), good);
    });

    test('a body over maxBytes rejects and leaves nothing, also past one upload part', async () => {
      const backing = await backend.backing();
      const store = await backing.open();
      for (const total of [64 * 1024, 12 * MiB]) {
        const key = `crates/big/too-big-${total}.crate`;
        await assert.rejects(store.put(key, generate(total, 256 * 1024), { maxBytes: total - 1 }), {
          code: 'CARGO_CACHER_BODY_TOO_LARGE',
        });
        await assert.rejects(store.put(key, Buffer.alloc(total), { maxBytes: total - 1 }), {
          code: 'CARGO_CACHER_BODY_TOO_LARGE',
        });
        assert.equal(await store.stat(key), undefined);
      }
      assert.deepEqual(await listKeys(store, ''), []);
      assert.equal(await backing.leftovers(), 0);
    });

    test('a source that breaks off rejects and leaves nothing', async () => {
      const backing = await backend.backing();
      const store = await backing.open();
      async function* breaking() {
        yield Buffer.alloc(1024);
        throw new Error('upstream reset');
      }
      await assert.rejects(store.put('crates/x/broken.crate', Readable.from(breaking())));
      assert.equal(await store.stat('crates/x/broken.crate'), undefined);
      assert.equal(await backing.leftovers(), 0);
    });

    test('concurrent puts of one key all succeed and leave one whole blob', async () => {
      // Several instances missing the same crate at once all store the same verified bytes.
      const store = await (await backend.backing()).open();
      const key = 'crates/3/s/same/same-1.0.0.crate';
      const body = Buffer.alloc(3 * MiB + 7, 'crate');
      const results = await Promise.all(
        Array.from({ length: 6 }, () =>
          store.put(key, generate(body.length, 64 * 1024, undefined, body), {
            expectedSha256: sha256(body),
          }),
        ),
      );
      assert.deepEqual(new Set(results.map((r) => r.sha256)), new Set([sha256(body)]));
      assert.deepEqual(await store.read(key), body);
      assert.deepEqual(await listKeys(store, 'crates'), [key]);
    });

    test('keys with + (semver build metadata) round-trip', async () => {
      const store = await (await backend.backing()).open();
      const key = 'crates/3/f/foo/foo-1.0.0+build.5.crate';
      const body = Buffer.from('plus');
      await store.put(key, Readable.from([body]), { expectedSha256: sha256(body) });
      assert.deepEqual(await store.read(key), body);
      assert.equal((await store.stat(key))?.size, body.length);
      assert.deepEqual(await collect((await store.open(key))?.stream), body);
      assert.deepEqual(await listKeys(store, 'crates'), [key]);
      await store.delete(key);
      assert.equal(await store.stat(key), undefined);
    });

    test('refuses keys that could escape the store', async () => {
      const store = await (await backend.backing()).open();
      for (const key of ['../x', 'crates/../../x', '/abs', 'a//b', 'a/./b', 'sp ace']) {
        await assert.rejects(store.read(key), { code: 'CARGO_CACHER_BAD_REQUEST' }, key);
      }
    });

    test('cleanup removes what a crashed put left, and it was never listed', async () => {
      const backing = await backend.backing();
      const store = await backing.open({ staleAfterMs: 0 });
      await backing.plantLeftover();
      assert.deepEqual(await listKeys(store, ''), []);
      assert.equal(await store.cleanup(), 1);
      assert.equal(await backing.leftovers(), 0);
    });

    test('streams a large blob both ways without holding it in memory', async () => {
      const store = await (await backend.backing()).open();
      const total = 64 * MiB;
      const held = await startMemoryMeter();
      let midway = Number.NaN;
      const source = generate(total, MiB, async () => {
        midway = await held();
      });
      const put = await store.put('crates/large/large.crate', source, { maxBytes: total });
      assert.equal(put.size, total);
      // A buffering store would hold the 48 MiB produced so far; S3 parts in flight are ~15 MiB.
      assert.ok(midway < 32 * MiB, `put held ${(midway / MiB).toFixed(1)} MiB at 48 MiB in`);
      const opened = await store.open('crates/large/large.crate');
      assert.equal(opened?.size, total);
      const hash = createHash('sha256');
      let peak = 0;
      let seen = 0;
      for await (const chunk of opened?.stream ?? []) {
        hash.update(chunk as Buffer);
        seen += (chunk as Buffer).length;
        if (seen % (16 * MiB) < (chunk as Buffer).length) peak = Math.max(peak, await held());
      }
      assert.equal(hash.digest('hex'), put.sha256);
      assert.ok(peak < 32 * MiB, `read held ${(peak / MiB).toFixed(1)} MiB`);
    });

    test('lease: one claimant fetches, the others wait for its blob', async () => {
      const backing = await backend.backing();
      const [a, b] = [await backing.open(), await backing.open()];
      const key = 'crates/3/l/lease/lease-1.0.0.crate';
      const first = await a.lease(key);
      assert.equal(first.published, false);
      if (!backend.sharedLeases) {
        // One process per store: the in-process single flight coordinates, the lease is free.
        assert.equal((await b.lease(key)).published, false);
        await first.release();
        return;
      }
      const waiting = b.lease(key);
      await a.put(key, Buffer.from('fetched once'));
      await first.release();
      const second = await waiting;
      assert.equal(second.published, true);
      await second.release();
    });

    test('lease: a claim given up without a blob passes to a waiter', async () => {
      const backing = await backend.backing();
      const [a, b] = [await backing.open(), await backing.open()];
      const key = 'crates/3/l/lease/lease-2.0.0.crate';
      const first = await a.lease(key);
      const waiting = b.lease(key);
      await first.release();
      const second = await waiting;
      assert.equal(second.published, false, 'the waiter fetches itself');
      await second.release();
      if (!backend.sharedLeases) return;
      // A holder that never finishes delays a waiter by waitMs at most (2 s here).
      const stuck = await a.lease(key);
      const started = Date.now();
      assert.equal((await b.lease(key)).published, false);
      assert.ok(Date.now() - started < 4_000);
      await stuck.release();
    });
  });
}
