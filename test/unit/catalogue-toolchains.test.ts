import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { Catalogue } from '../../src/cache/catalogue.ts';
import { CATALOGUE_SCHEMA } from '../../src/cache/catalogue-schema.ts';
import { trackChanges } from '../../src/cache/tracked-store.ts';
import { sweep } from '../../src/jobs/gc.ts';
import { type VerifyDeps, verifyCache } from '../../src/jobs/verify.ts';
import { createLogger } from '../../src/logger.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { openDatabase } from '../../src/sqlite.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const log = createLogger({ level: 'silent', format: 'json' });
const ARCHIVE = 'toolchains/dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz';
const MANIFEST = 'toolchains/dist/channel-rust-stable.toml';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await makeTempDir('catalogue-toolchains');
  t.after(() => removeTempDir(dir));
  return dir;
}

/** A store and its catalogue at `dir`, on a clock the test moves. */
async function openStore(t: TestContext, dir: string, clock: { ms: number }) {
  const raw = new FsBlobStore(dir);
  await raw.init();
  const catalogue = Catalogue.open(dir, { flushIntervalMs: 0, now: () => clock.ms });
  t.after(() => catalogue.close());
  return { raw, catalogue, store: trackChanges(raw, { catalogue, log }) };
}

describe('toolchain files in the catalogue', () => {
  test('a catalogue written before toolchains is migrated in place, rows and totals kept', async (t) => {
    const dir = await tempDir(t);
    const old = openDatabase(join(dir, 'catalogue.sqlite'), {
      ...CATALOGUE_SCHEMA,
      migrations: CATALOGUE_SCHEMA.migrations.slice(0, 1),
    });
    old.sqlite
      .prepare(`INSERT INTO object (key, area, name, version, size, stored_at, used_at, pinned)
        VALUES (?, 'crates', 'serde', '1.0.0', 100, 1, 1, 1)`)
      .run(crateKey({ name: 'serde', version: '1.0.0' }));
    old.close();

    const catalogue = Catalogue.open(dir, { flushIntervalMs: 0 });
    t.after(() => catalogue.close());
    assert.deepEqual(catalogue.totals().crates, { objects: 1, bytes: 100 });
    assert.equal(catalogue.get(crateKey({ name: 'serde', version: '1.0.0' }))?.pinned, true);
    catalogue.recordStored(ARCHIVE, { size: 40, sha256: 'a'.repeat(64) });
    assert.deepEqual(catalogue.totals().toolchains, { objects: 1, bytes: 40 });
    assert.equal(catalogue.get(ARCHIVE)?.area, 'toolchains');
  });

  test('--max-size and expiry take crates and toolchain files least recently used first; pinned toolchain files stay', async (t) => {
    const clock = { ms: 1_000_000 };
    const { store, catalogue } = await openStore(t, await tempDir(t), clock);
    const put = async (key: string) => {
      clock.ms += 1000;
      await store.put(key, Buffer.alloc(100, 1));
    };
    await put(MANIFEST); // oldest, but pinned
    await put(ARCHIVE);
    await put(crateKey({ name: 'serde', version: '1.0.0' }));
    await put('toolchains/dist/2026-11-26/cargo-1.99.0-x86_64-unknown-linux-gnu.tar.xz');
    catalogue.setToolchainPins([MANIFEST]);
    assert.equal(catalogue.get(MANIFEST)?.pinned, true);

    const budget = await sweep(
      { store, catalogue },
      { maxSizeBytes: 250, pinned: new Set() },
      clock.ms,
    );
    assert.deepEqual(
      budget.removed.map((removal) => removal.key),
      [ARCHIVE, crateKey({ name: 'serde', version: '1.0.0' })],
    );
    assert.equal(budget.remainingBytes, 200);

    clock.ms += 10_000;
    const expiry = await sweep(
      { store, catalogue },
      { expireAfterMs: 5000, pinned: new Set() },
      clock.ms,
    );
    assert.deepEqual(
      expiry.removed.map((removal) => removal.key),
      ['toolchains/dist/2026-11-26/cargo-1.99.0-x86_64-unknown-linux-gnu.tar.xz'],
    );
    assert.ok(catalogue.has(MANIFEST), 'the pinned manifest stays');

    // Pins follow the channel: once unpinned, it goes like any other file.
    catalogue.setToolchainPins([]);
    const after = await sweep(
      { store, catalogue },
      { expireAfterMs: 5000, pinned: new Set() },
      clock.ms,
    );
    assert.deepEqual(
      after.removed.map((removal) => removal.key),
      [MANIFEST],
    );
  });

  test('verify re-hashes toolchain files against their recorded sha256 and moves a bad one aside', async (t) => {
    const dir = await tempDir(t);
    const clock = { ms: 1_000_000 };
    const { store, catalogue } = await openStore(t, dir, clock);
    const good = Buffer.from('good archive');
    await store.put(ARCHIVE, good);
    await store.put(MANIFEST, Buffer.from('manifest'));
    // Bit rot behind the cache's back.
    await writeFile(join(dir, ...MANIFEST.split('/')), 'manifesT');

    const deps = { store, catalogue, log } as unknown as VerifyDeps;
    const report = await verifyCache(deps, { mode: 'quarantine' });
    assert.equal(report.checked, 2);
    assert.deepEqual(
      report.problems.map((problem) => [problem.key, problem.kind, problem.action]),
      [[MANIFEST, 'mismatch', 'quarantined']],
    );
    assert.equal(catalogue.has(MANIFEST), false, 'moved out of the catalogue');
    assert.equal(catalogue.get(ARCHIVE)?.sha256, createHash('sha256').update(good).digest('hex'));
  });
});
