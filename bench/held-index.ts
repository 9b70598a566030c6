/**
 * @module
 * `npx tsx bench/held-index.ts [versions...]`: the cost of the index of what is held (issue #15)
 * on the scale benchmark's synthetic registry (generate it first with `npm run bench -- scale`;
 * default 10,000 and 200,000 versions, to show how the cost grows). A real SQLite catalogue holds
 * every `stride`-th version (a partial cache), and three things are timed:
 * - the sparse view: every index file served once reduced to what is held, then again from the
 *   kept copies;
 * - the git index for an upstream outage: the overlay on the registry's bare git index, files
 *   of crates not held removed, the others reduced;
 * - the git index of an air-gapped instance: one commit built from the held index files in a
 *   filesystem store, through `git fast-import`.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalogue } from '../src/cache/catalogue.ts';
import { HeldIndexView, heldIndexFiles, heldOverlayFilter } from '../src/cache/held-view.ts';
import { indexKey } from '../src/cache/index-cache.ts';
import { createIndexFile, encodeIndexRecord } from '../src/cache/index-record.ts';
import { gitText } from '../src/git/git-command.ts';
import { buildLocalIndexCommit } from '../src/git/local-index.ts';
import { buildOverlayCommit, localIndexConfig, UPSTREAM_REF } from '../src/git/overlay.ts';
import { crateKey } from '../src/registry/crate-id.ts';
import { indexPath } from '../src/registry/crate-name.ts';
import { FsBlobStore } from '../src/storage/fs-blob-store.ts';

/** Every how many versions one is held. */
const STRIDE = 3;

interface Registry {
  dir: string;
  versions: { name: string; version: string }[];
}

async function loadRegistry(size: string): Promise<Registry> {
  const dir = join(homedir(), '.cache', 'cargo-cacher', 'bench-registry', `${size}-v1`);
  const tsv = await readFile(join(dir, 'versions.tsv'), 'utf8');
  const versions = tsv
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name = '', version = ''] = line.split('\t');
      return { name, version };
    });
  return { dir, versions };
}

function ms(started: number): string {
  return `${(performance.now() - started).toFixed(0)} ms`;
}

async function measure(size: string): Promise<void> {
  const registry = await loadRegistry(size);
  const work = await mkdtemp(join(tmpdir(), 'held-index-'));
  try {
    const catalogue = Catalogue.open(work, { flushIntervalMs: 0 });
    const held = registry.versions.filter((_, i) => i % STRIDE === 0);
    catalogue.db.write(() => {
      for (const id of held) catalogue.recordStored(crateKey(id), { size: 1 });
    });
    const names = [...new Set(held.map((id) => id.name.toLowerCase()))];
    const allNames = [...new Set(registry.versions.map((id) => id.name.toLowerCase()))];
    const line = `${size} versions (${allNames.length} crates), ${held.length} held (${names.length} crates):`;
    process.stdout.write(`${line}\n`);

    // The store of an air-gapped instance: an index record for every crate held.
    const store = new FsBlobStore(join(work, 'store'));
    await store.init();
    const files = new Map<string, Buffer>();
    for (const name of allNames) {
      const path = indexPath(name);
      files.set(path, await readFile(join(registry.dir, 'www', 'index', path)));
    }
    for (const name of names) {
      const path = indexPath(name);
      const file = createIndexFile(files.get(path) as Buffer, {}, Date.now());
      await store.put(indexKey(path), encodeIndexRecord(file));
    }

    const view = new HeldIndexView(catalogue, { always: true, upstreamFailing: () => false });
    const indexFiles = [...files].map(
      ([path, body]) => [path, createIndexFile(body, {}, 0)] as const,
    );
    let started = performance.now();
    let served = 0;
    for (const [path, file] of indexFiles) if (view.serve(path, file, 'hit')) served++;
    const first = ms(started);
    started = performance.now();
    for (const [path, file] of indexFiles) view.serve(path, file, 'hit');
    process.stdout.write(
      `  sparse view: ${indexFiles.length} files reduced in ${first} (${served} served, the rest 404), kept copies ${ms(started)}\n`,
    );

    const gitDir = join(work, 'index.git');
    await cp(join(registry.dir, 'index.git'), gitDir, { recursive: true });
    await gitText(gitDir, ['update-ref', UPSTREAM_REF, 'HEAD']);
    const filter = heldOverlayFilter(catalogue, false)({ upstreamReachable: false });
    started = performance.now();
    await buildOverlayCommit(gitDir, 'http://127.0.0.1:8080', filter?.filter);
    process.stdout.write(
      `  git index for an upstream outage (overlay, held only): ${ms(started)}\n`,
    );

    const localDir = join(work, 'local.git');
    await gitText(work, ['init', '--bare', '--quiet', localDir]);
    const localFilter = heldOverlayFilter(catalogue, true)({ upstreamReachable: false });
    started = performance.now();
    await buildLocalIndexCommit(
      localDir,
      localIndexConfig('http://127.0.0.1:8080'),
      (async function* () {
        for await (const file of heldIndexFiles(catalogue, store)) {
          const body = localFilter?.filter(file.path, file.body);
          if (body !== null) yield body === undefined ? file : { path: file.path, body };
        }
      })(),
    );
    process.stdout.write(
      `  git index of an air-gapped instance (fast-import of held files): ${ms(started)}\n`,
    );
    catalogue.close();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const sizes = process.argv.length > 2 ? process.argv.slice(2) : ['10000', '200000'];
for (const size of sizes) await measure(size);
