import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { list as listTar } from 'tar';
import { Catalogue } from '../../src/cache/catalogue.ts';
import {
  createIndexFile,
  decodeIndexRecord,
  encodeIndexRecord,
} from '../../src/cache/index-record.ts';
import { buildConfig } from '../../src/config.ts';
import { openStorage } from '../../src/instance.ts';
import { createLogger } from '../../src/logger.ts';
import {
  type BundleManifest,
  bundleIndexPath,
  parseBundleManifest,
} from '../../src/registry/bundle-manifest.ts';
import { crateKey } from '../../src/registry/crate-id.ts';
import { runCliCommand } from '../helpers/cli-process.ts';
import {
  type FakeCrateSpec,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);

const CRATES: FakeCrateSpec[] = [
  { name: 'bun-a', version: '0.1.0' },
  { name: 'bun-a', version: '0.2.0' },
  { name: 'bun-b', version: '1.0.0', deps: [{ name: 'bun-a', req: '0.1' }], padBytes: 20_000 },
  { name: 'MixedCase', version: '0.3.0' },
  { name: 'plus', version: '1.0.0+build.5' },
  { name: 'bun-c', version: '2.0.0' },
];
/** What the connected store fetched first: everything but bun-a 0.2.0 and bun-c. */
const FETCHED: [string, string][] = [
  ['bun-a', '0.1.0'],
  ['bun-b', '1.0.0'],
  ['MixedCase', '0.3.0'],
  ['plus', '1.0.0+build.5'],
];

async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  t.after(() => removeTempDir(dir));
  return dir;
}

async function upstreamWithCrates(t: TestContext): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  return upstream;
}

/** Fetches crates (and config.json) through a proxy on `storageDir`, then stops it. */
async function fetchInto(storageDir: string, upstream: FakeUpstream, crates: [string, string][]) {
  const proxy = await startProxy({ upstream, storageDir });
  try {
    assert.equal((await httpGet(`${proxy.url}/index/config.json`)).status, 200);
    for (const [name, version] of crates) {
      const url = `${proxy.url}/api/v1/crates/${name}/${encodeURIComponent(version)}/download`;
      assert.equal((await httpGet(url)).status, 200, `${name} ${version}`);
    }
  } finally {
    await proxy.close();
  }
}

/** A connected store holding {@link FETCHED}. */
async function connectedStore(t: TestContext, upstream: FakeUpstream): Promise<string> {
  const store = await tempDir(t, 'bundle-source');
  await fetchInto(store, upstream, FETCHED);
  return store;
}

async function cli(args: string[]) {
  return runCliCommand(args, 120_000);
}

async function readManifest(bundleDir: string): Promise<BundleManifest> {
  return parseBundleManifest(await readFile(join(bundleDir, 'manifest.json'), 'utf8'));
}

/** The manifest of a bundle tar file. */
async function tarManifest(file: string): Promise<BundleManifest> {
  const chunks: Buffer[] = [];
  await listTar({
    file,
    onReadEntry: (entry) => {
      if (entry.path === 'manifest.json') entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      else entry.resume();
    },
  });
  return parseBundleManifest(Buffer.concat(chunks).toString('utf8'));
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function cratePath(upstream: FakeUpstream, name: string, version: string): string {
  return crateKey(upstream.crate(name, version));
}

/** The crate keys and index keys the catalogue of `dir` holds. */
function catalogueKeys(dir: string): { crates: string[]; index: string[] } {
  const catalogue = Catalogue.open(dir, { readonly: true });
  try {
    const keys = (area: string) =>
      catalogue.rowsBetween(`${area}/`, `${area}0`, 10_000).map((row) => row.key);
    return { crates: keys('crates'), index: keys('index') };
  } finally {
    catalogue.close();
  }
}

/** The body of the index file `dir` holds for `name`, and when it counts as checked. */
async function heldIndexFile(dir: string, name: string) {
  const record = await readFile(join(dir, bundleIndexPath(name)));
  const file = decodeIndexRecord(record);
  assert.ok(file, `the index record of ${name} decodes`);
  return file;
}

describe('cargo-cacher export and import', { timeout: 240_000 }, () => {
  test('export --all to a directory and to a .tar; each imports into an empty store that verifies clean', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const dirBundle = join(work, 'bundle');
    const tarBundle = join(work, 'bundle.tar');

    const toDir = await cli(['export', dirBundle, '--all', '-i', store]);
    assert.equal(toDir.code, 0, toDir.stderr);
    assert.match(toDir.stdout, /exported 4 crates and 4 index files/);
    const manifest = await readManifest(dirBundle);
    assert.deepEqual(
      manifest.crates.map((crate) => `${crate.name} ${crate.version}`).sort(),
      FETCHED.map(([name, version]) => `${name} ${version}`).sort(),
      'crates keep the case of their index line',
    );
    assert.equal(manifest.source.storage, store);
    assert.equal(manifest.source.upstream, upstream.url);
    assert.ok(Math.abs(Date.parse(manifest.createdAt) - Date.now()) < 120_000);
    assert.deepEqual(
      manifest.files.map((file) => file.path.split('/')[0]),
      ['index', 'index', 'index', 'index', 'crates', 'crates', 'crates', 'crates'],
      'index files first, then crates',
    );
    for (const file of manifest.files) {
      const bytes = await readFile(join(dirBundle, file.path));
      assert.equal(bytes.length, file.size, file.path);
      assert.equal(sha256(bytes), file.sha256, file.path);
    }
    for (const [name, version] of FETCHED) {
      const bytes = await readFile(join(dirBundle, cratePath(upstream, name, version)));
      assert.ok(
        bytes.equals(upstream.crate(name, version).bytes),
        `${name} ${version} as published`,
      );
    }
    // The index files are upstream's bodies, without the store's record line.
    const indexA = await readFile(join(dirBundle, bundleIndexPath('bun-a')), 'utf8');
    assert.equal(
      indexA,
      `${upstream.crate('bun-a', '0.1.0').indexLine}\n${upstream.crate('bun-a', '0.2.0').indexLine}\n`,
    );

    const toTar = await cli(['export', tarBundle, '--all', '-i', store]);
    assert.equal(toTar.code, 0, toTar.stderr);
    const entries: string[] = [];
    await listTar({ file: tarBundle, onReadEntry: (entry) => entries.push(entry.path) });
    assert.equal(entries[0], 'manifest.json', 'the manifest comes first');
    assert.deepEqual(entries.slice(1).sort(), manifest.files.map((file) => file.path).sort());

    for (const bundle of [dirBundle, tarBundle]) {
      const target = await tempDir(t, 'bundle-target');
      const imported = await cli(['import', bundle, '-i', target]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(
        imported.stdout,
        /imported 4 crates and 4 index files .*; 0 already held, 0 refused/,
      );
      const held = catalogueKeys(target);
      assert.deepEqual(
        held.crates.sort(),
        FETCHED.map(([name, version]) => cratePath(upstream, name, version)).sort(),
        `the catalogue holds every crate of ${bundle}`,
      );
      assert.equal(held.index.length, 4);
      const file = await heldIndexFile(target, 'bun-a');
      assert.equal(file.body.toString('utf8'), indexA);
      const made = bundle === tarBundle ? await tarManifest(tarBundle) : manifest;
      assert.equal(file.checkedAt, Date.parse(made.createdAt), 'checked when the bundle was made');
      const verified = await cli(['verify', '--offline', '-i', target]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /checked 4 crates: 0 problems/);

      const again = await cli(['import', bundle, '-i', target]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stdout,
        /imported 0 crates and 0 index files .*; 8 already held, 0 refused/,
      );
    }
  });

  test('a .tar with paths too long for ustar (pax headers) is read by system tar and imported', async (t) => {
    const long = {
      name: `long-${'x'.repeat(59)}`,
      version: '1.0.0-alpha.very.long.prerelease.identifier.1',
    };
    const upstream = await startFakeUpstream({ crates: [long, { name: 'ab', version: '0.1.0' }] });
    t.after(() => upstream.close());
    const store = await tempDir(t, 'bundle-source');
    await fetchInto(store, upstream, [
      [long.name, long.version],
      ['ab', '0.1.0'],
    ]);
    const work = await tempDir(t, 'bundle-work');
    const bundle = join(work, 'long.tar');
    assert.equal((await cli(['export', bundle, '--all', '-i', store])).code, 0);
    const path = cratePath(upstream, long.name, long.version);
    assert.ok(path.length > 155, `${path} needs a pax header`);
    const { stdout } = await execFileAsync('tar', ['-tf', bundle]);
    assert.deepEqual(stdout.trim().split('\n'), [
      'manifest.json',
      bundleIndexPath('ab'),
      bundleIndexPath(long.name),
      cratePath(upstream, 'ab', '0.1.0'),
      path,
    ]);
    await execFileAsync('tar', ['-xf', bundle, '-C', work]);
    assert.ok(
      (await readFile(join(work, path))).equals(upstream.crate(long.name, long.version).bytes),
    );
    const target = await tempDir(t, 'bundle-target');
    const imported = await cli(['import', bundle, '-i', target]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.ok(catalogueKeys(target).crates.includes(path));
  });

  test('export --lock takes the lock file packages; one not held is reported, the rest written', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const lock = join(work, 'Cargo.lock');
    const source = 'registry+https://github.com/rust-lang/crates.io-index';
    const pkg = (name: string, version: string) =>
      `[[package]]\nname = "${name}"\nversion = "${version}"\nsource = "${source}"\nchecksum = "${upstream.crate(name, version).checksum}"\n`;
    await writeFile(
      lock,
      [
        'version = 3\n',
        pkg('bun-a', '0.2.0'),
        pkg('bun-b', '1.0.0'),
        pkg('plus', '1.0.0+build.5'),
        '[[package]]\nname = "app"\nversion = "0.1.0"\n',
      ].join('\n'),
    );
    const out = join(work, 'lock.tar');
    const result = await cli(['export', out, '--lock', lock, '-i', store]);
    assert.equal(result.code, 1, 'a version not held makes it exit 1');
    assert.match(result.stderr, /^problem: bun-a 0\.2\.0: not held$/m);
    assert.match(result.stdout, /exported 2 crates and 3 index files/);
    const entries: string[] = [];
    await listTar({ file: out, onReadEntry: (entry) => entries.push(entry.path) });
    assert.deepEqual(entries.sort(), [
      cratePath(upstream, 'bun-b', '1.0.0'),
      cratePath(upstream, 'plus', '1.0.0+build.5'),
      bundleIndexPath('bun-a'),
      bundleIndexPath('bun-b'),
      bundleIndexPath('plus'),
      'manifest.json',
    ]);

    const nothing = await cli(['export', join(work, 'none'), '-i', store]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing chosen: give --lock, --mirror-filter or --all/);
    const exists = await cli(['export', out, '--all', '-i', store]);
    assert.equal(exists.code, 2);
    assert.match(exists.stderr, /lock\.tar already exists/);
  });

  test('export --mirror-filter takes the roots and their dependencies from the held index files', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const filter = join(work, 'mirror.txt');
    await writeFile(filter, '# what the far side builds with\nbun-b\n');
    const out = join(work, 'filtered');
    const result = await cli(['export', out, '--mirror-filter', filter, '-i', store]);
    assert.equal(result.code, 0, result.stderr);
    const manifest = await readManifest(out);
    assert.deepEqual(
      manifest.crates.map((crate) => `${crate.name} ${crate.version}`).sort(),
      ['bun-a 0.1.0', 'bun-b 1.0.0'],
      'bun-b and the bun-a its requirement 0.1 takes',
    );

    // The newest two versions of bun-a: 0.2.0 is in the held index file but not held.
    await writeFile(filter, 'bun-a\n');
    const keep = await cli([
      'export',
      join(work, 'keep2'),
      '--mirror-filter',
      filter,
      '--mirror-keep',
      '2',
      '-i',
      store,
    ]);
    assert.equal(keep.code, 1);
    assert.match(keep.stderr, /^problem: bun-a 0\.2\.0: not held$/m);
    assert.deepEqual(
      (await readManifest(join(work, 'keep2'))).crates.map((crate) => crate.version),
      ['0.1.0'],
    );
  });

  test('export --since writes only what the earlier bundle lacks', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const first = join(work, 'week1');
    assert.equal((await cli(['export', first, '--all', '-i', store])).code, 0);

    // A week later: a new crate, and a new version of a crate the first bundle carried.
    await upstream.addCrate({ name: 'bun-a', version: '0.3.0' });
    await fetchInto(store, upstream, [
      ['bun-c', '2.0.0'],
      ['bun-a', '0.3.0'],
    ]);
    const second = join(work, 'week2.tar');
    const result = await cli([
      'export',
      second,
      '--all',
      '--since',
      join(first, 'manifest.json'),
      '-i',
      store,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /exported 2 crates and 2 index files .*, 7 already carried; 0 problems/,
    );
    const entries: string[] = [];
    await listTar({ file: second, onReadEntry: (entry) => entries.push(entry.path) });
    assert.deepEqual(entries.sort(), [
      cratePath(upstream, 'bun-a', '0.3.0'),
      cratePath(upstream, 'bun-c', '2.0.0'),
      bundleIndexPath('bun-a'),
      bundleIndexPath('bun-c'),
      'manifest.json',
    ]);

    // Nothing new since either: given as the bundles themselves this time.
    const third = join(work, 'week3');
    const nothing = await cli([
      'export',
      third,
      '--all',
      '--since',
      first,
      '--since',
      second,
      '-i',
      store,
    ]);
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(
      nothing.stdout,
      /exported 0 crates and 0 index files .*, 11 already carried; 0 problems/,
    );
    assert.equal((await readManifest(third)).since, (await tarManifest(second)).createdAt);

    // Both carried across, in order, give the far side everything.
    const target = await tempDir(t, 'bundle-target');
    assert.equal((await cli(['import', first, '-i', target])).code, 0);
    const imported = await cli(['import', second, '-i', target]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(catalogueKeys(target).crates.length, 6);
    const indexA = (await heldIndexFile(target, 'bun-a')).body.toString('utf8');
    assert.equal(indexA.trim().split('\n').length, 3, 'bun-a lists its three versions');
    const verified = await cli(['verify', '--offline', '-i', target]);
    assert.match(verified.stdout, /checked 6 crates: 0 problems/);
  });

  test('a flipped byte or a truncated crate is refused by name; the rest is imported', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const bundle = join(work, 'bundle');
    assert.equal((await cli(['export', bundle, '--all', '-i', store])).code, 0);
    const flipped = cratePath(upstream, 'bun-b', '1.0.0');
    const cut = cratePath(upstream, 'MixedCase', '0.3.0');
    const bytes = await readFile(join(bundle, flipped));
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x01;
    await writeFile(join(bundle, flipped), bytes);
    await truncate(join(bundle, cut), 100);

    const target = await tempDir(t, 'bundle-target');
    const result = await cli(['import', bundle, '-i', target]);
    assert.equal(result.code, 1);
    const refused = result.stderr.split('\n').filter((line) => line.startsWith('refused '));
    assert.equal(refused.length, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^refused ${escapeRe(flipped)}: tampered with: sha256 [0-9a-f]{64} does not match`,
        'm',
      ),
    );
    assert.match(
      result.stderr,
      new RegExp(`^refused ${escapeRe(cut)}: truncated: 100 bytes, manifest.json says \\d+$`, 'm'),
    );
    assert.match(
      result.stdout,
      /imported 2 crates and 4 index files .*; 0 already held, 2 refused/,
    );
    assert.deepEqual(
      catalogueKeys(target).crates.sort(),
      [cratePath(upstream, 'bun-a', '0.1.0'), cratePath(upstream, 'plus', '1.0.0+build.5')].sort(),
    );

    // The same flip inside a tar, where no file size gives it away.
    const tar = join(work, 'bundle.tar');
    assert.equal((await cli(['export', tar, '--all', '-i', store])).code, 0);
    const archive = await readFile(tar);
    const published = upstream.crate('bun-b', '1.0.0').bytes;
    const at = archive.indexOf(published);
    assert.ok(at > 0, 'the crate is stored whole in the tar');
    archive[at + 1000] = (archive[at + 1000] ?? 0) ^ 0x80;
    await writeFile(tar, archive);
    const tarTarget = await tempDir(t, 'bundle-target');
    const fromTar = await cli(['import', tar, '-i', tarTarget]);
    assert.equal(fromTar.code, 1);
    assert.match(fromTar.stderr, new RegExp(`^refused ${escapeRe(flipped)}: tampered with`, 'm'));
    assert.equal(
      fromTar.stderr.split('\n').filter((line) => line.startsWith('refused ')).length,
      1,
    );
    assert.equal(catalogueKeys(tarTarget).crates.length, 3, 'the other three crates are imported');
  });

  test('a manifest edited to match a tampered crate is refused against the index line', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const bundle = join(work, 'bundle');
    assert.equal((await cli(['export', bundle, '--all', '-i', store])).code, 0);
    const path = cratePath(upstream, 'plus', '1.0.0+build.5');
    const forged = Buffer.from('not the crate that was published');
    await writeFile(join(bundle, path), forged);
    const manifestPath = join(bundle, 'manifest.json');
    const manifest = await readManifest(bundle);
    const entry = manifest.files.find((file) => file.path === path);
    assert.ok(entry);
    const text = (await readFile(manifestPath, 'utf8')).replace(
      JSON.stringify(entry),
      JSON.stringify({ ...entry, size: forged.length, sha256: sha256(forged) }),
    );
    await writeFile(manifestPath, text);
    const target = await tempDir(t, 'bundle-target');
    const result = await cli(['import', bundle, '-i', target]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(
        `^refused ${escapeRe(path)}: manifest.json says sha256 ${sha256(forged)}, its index line says ${upstream.crate('plus', '1.0.0+build.5').checksum}$`,
        'm',
      ),
    );
    assert.equal(catalogueKeys(target).crates.length, 3);
  });

  test('an index file merges with the store copy: lines of both sides are kept, the newer wins', async (t) => {
    const upstream = await upstreamWithCrates(t);
    const store = await connectedStore(t, upstream);
    const work = await tempDir(t, 'bundle-work');
    const bundle = join(work, 'bundle');
    assert.equal((await cli(['export', bundle, '--all', '-i', store])).code, 0);
    const createdAt = Date.parse((await readManifest(bundle)).createdAt);

    // The far side already holds bun-a's file with a version the bundle lacks, checked earlier;
    // and plus's file with 1.0.0+build.5 yanked, checked after the bundle was made.
    const cksum = 'e'.repeat(64);
    const farOnly = `{"name":"bun-a","vers":"0.0.9","deps":[],"cksum":"${cksum}","features":{},"yanked":false}`;
    const staleA = upstream
      .crate('bun-a', '0.1.0')
      .indexLine.replace('"yanked":false', '"yanked":true');
    const plusLine = upstream.crate('plus', '1.0.0+build.5').indexLine;
    const yankedPlus = plusLine.replace('"yanked":false', '"yanked":true');
    assert.notEqual(yankedPlus, plusLine);
    const target = await tempDir(t, 'bundle-target');
    const log = createLogger({ level: 'silent', format: 'json' });
    const storage = await openStorage(buildConfig({ storageDir: target }), log);
    try {
      const put = (name: string, body: string, checkedAt: number) =>
        storage.store.put(
          bundleIndexPath(name),
          encodeIndexRecord(createIndexFile(Buffer.from(body), {}, checkedAt)),
        );
      await put('bun-a', `${farOnly}\r\n${staleA}\n`, createdAt - 60_000);
      await put('plus', `${yankedPlus}\n`, createdAt + 60_000);
    } finally {
      await storage.close();
    }

    const result = await cli(['import', bundle, '-i', target]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\(1 merged with the held copy\)/);
    const a = await heldIndexFile(target, 'bun-a');
    assert.equal(
      a.body.toString('utf8'),
      `${farOnly}\r\n${upstream.crate('bun-a', '0.1.0').indexLine}\n${upstream.crate('bun-a', '0.2.0').indexLine}\n`,
      "the bundle's newer lines win; the far side's own line stays, CRLF and all",
    );
    assert.equal(a.checkedAt, createdAt);
    const plus = await heldIndexFile(target, 'plus');
    assert.equal(
      plus.body.toString('utf8'),
      `${yankedPlus}\n`,
      'the newer copy on the far side wins',
    );
    assert.equal(plus.checkedAt, createdAt + 60_000);
    // The crate itself was checked against the bundle's own index line, and imported.
    assert.ok(catalogueKeys(target).crates.includes(cratePath(upstream, 'plus', '1.0.0+build.5')));
  });
});

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
