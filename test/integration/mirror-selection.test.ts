import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import { selectFromFilters } from '../../src/jobs/mirror-selection.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const SOURCE = 'registry+https://github.com/rust-lang/crates.io-index';

function cksum(name: string, vers: string): string {
  return Buffer.from(`${name}@${vers}`).toString('hex').padEnd(64, '0').slice(0, 64);
}

function line(name: string, vers: string, deps: [string, string][] = [], yanked = false): string {
  return JSON.stringify({
    name,
    vers,
    deps: deps.map(([dep, req]) => ({ name: dep, req, kind: 'normal', target: null })),
    cksum: cksum(name, vers),
    features: {},
    yanked,
  });
}

const REGISTRY: Record<string, string[]> = {
  app: [line('app', '1.0.0', [['mid', '^1']])],
  mid: [line('mid', '1.0.0', [['leaf', '^0.1']]), line('mid', '1.1.0', [['leaf', '^0.1']])],
  leaf: [line('leaf', '0.1.0'), line('leaf', '0.1.1', [], true), line('leaf', '0.1.2')],
  pinned: [line('pinned', '2.0.0', [], true), line('pinned', '2.1.0')],
};

/** A v3 lock file of a project pinning crates.io packages. */
function lockFile(packages: [string, string][]): string {
  const entries = packages.map(
    ([name, version]) =>
      `[[package]]\nname = "${name}"\nversion = "${version}"\nsource = "${SOURCE}"\nchecksum = "${cksum(name, version)}"\n`,
  );
  return `version = 3\n\n[[package]]\nname = "project"\nversion = "0.1.0"\n\n${entries.join('\n')}`;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await makeTempDir('mirror-selection');
  t.after(() => removeTempDir(dir));
  return dir;
}

/** readIndex over {@link REGISTRY}, counting reads and the most running at once. */
function registryReader(registry = REGISTRY) {
  const stats = { reads: [] as string[], running: 0, most: 0 };
  const readIndex = async (name: string): Promise<Buffer | undefined> => {
    stats.reads.push(name);
    stats.running += 1;
    stats.most = Math.max(stats.most, stats.running);
    await new Promise((resolve) => setImmediate(resolve));
    stats.running -= 1;
    const lines = registry[name.toLowerCase()];
    return lines && Buffer.from(`${lines.join('\n')}\n`);
  };
  return { readIndex, stats };
}

describe('selectFromFilters', () => {
  test('names, requirements and the lock files of a directory, each with its reason', async (t) => {
    const dir = await tempDir(t);
    await mkdir(join(dir, 'projects', 'one', 'target', 'debug'), { recursive: true });
    await mkdir(join(dir, 'projects', 'two'), { recursive: true });
    await writeFile(join(dir, 'projects', 'one', 'Cargo.lock'), lockFile([['pinned', '2.0.0']]));
    // Build output is never searched.
    await writeFile(
      join(dir, 'projects', 'one', 'target', 'debug', 'Cargo.lock'),
      lockFile([['pinned', '2.1.0']]),
    );
    await writeFile(join(dir, 'projects', 'two', 'Cargo.lock'), lockFile([['leaf', '0.1.1']]));
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'app\n./projects\n');
    const { readIndex, stats } = registryReader();

    const selection = await selectFromFilters([filter], { keep: 1, readIndex });

    assert.deepEqual(
      selection.versions.map((v) => [`${v.name}@${v.version}`, v.reason]),
      [
        ['app@1.0.0', `root app (${filter}:1)`],
        ['pinned@2.0.0', `root pinned 2.0.0 in ./projects (${filter}:2)`],
        ['leaf@0.1.1', `root leaf 0.1.1 in ./projects (${filter}:2)`],
        ['mid@1.1.0', `root app (${filter}:1) via app 1.0.0`],
        ['leaf@0.1.2', `root app (${filter}:1) via mid 1.1.0`],
      ],
    );
    assert.equal(selection.versions[0]?.checksum, cksum('app', '1.0.0'));
    assert.deepEqual(selection.problems, []);
    assert.deepEqual(stats.reads.sort(), ['app', 'leaf', 'mid', 'pinned']);
  });

  test('a single lock file is named; keep takes the newest n of a root', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'Cargo.lock'), lockFile([['mid', '1.0.0']]));
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'Cargo.lock\nleaf\n');
    const { readIndex } = registryReader();
    const selection = await selectFromFilters([filter], { keep: 2, readIndex });
    assert.deepEqual(
      selection.versions.map((v) => [`${v.name}@${v.version}`, v.reason]),
      [
        ['mid@1.0.0', `root mid 1.0.0 in Cargo.lock (${filter}:1)`],
        ['leaf@0.1.2', `root leaf (${filter}:2)`],
        ['leaf@0.1.0', `root leaf (${filter}:2)`],
      ],
    );
  });

  test('reads at most `concurrency` index files at once, and the answer does not depend on it', async (t) => {
    const wide: Record<string, string[]> = {
      hub: [
        line(
          'hub',
          '1.0.0',
          Array.from({ length: 30 }, (_, i) => [`spoke${i}`, '1']),
        ),
      ],
    };
    for (let i = 0; i < 30; i++) wide[`spoke${i}`] = [line(`spoke${i}`, '1.0.0')];
    const dir = await tempDir(t);
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'hub\n');
    const answers: string[][] = [];
    for (const concurrency of [1, 4, 64]) {
      const { readIndex, stats } = registryReader(wide);
      const selection = await selectFromFilters([filter], { keep: 1, readIndex, concurrency });
      assert.ok(stats.most <= concurrency, `${stats.most} reads at once, limit ${concurrency}`);
      if (concurrency === 4) assert.equal(stats.most, 4);
      answers.push(selection.versions.map((v) => `${v.name}@${v.version} ${v.reason}`));
    }
    assert.equal(answers[0]?.length, 31);
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
  });

  test('an index file that cannot be read, a missing crate and an empty directory are problems', async (t) => {
    const dir = await tempDir(t);
    await mkdir(join(dir, 'empty'));
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'app\nghost\nempty/\n');
    const { readIndex } = registryReader();
    const selection = await selectFromFilters([filter], {
      keep: 1,
      readIndex: async (name) => {
        if (name === 'mid') throw new Error('upstream unreachable');
        return readIndex(name);
      },
    });
    assert.deepEqual(
      selection.versions.map((v) => `${v.name}@${v.version}`),
      ['app@1.0.0'],
    );
    assert.deepEqual(selection.problems, [
      `${filter}:3: no Cargo.lock under ${join(dir, 'empty')}/`,
      `ghost (newest): no such crate in the index (root ghost (${filter}:2))`,
      `mid ^1: its index file could not be read: upstream unreachable (root app (${filter}:1) via app 1.0.0)`,
    ]);
  });

  test('a lock file that does not parse is an error naming the filter line', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'Cargo.lock'), 'version = 3\n[[package]\n');
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'app\n./Cargo.lock\n');
    await assert.rejects(
      selectFromFilters([filter], { keep: 1, readIndex: registryReader().readIndex }),
      (err: unknown) => {
        assert.ok(isCacherError(err, 'CARGO_CACHER_INVALID_CONFIG'));
        assert.ok(err.message.startsWith(`${filter}:2: `), err.message);
        assert.match(err.message, /not valid TOML/);
        return true;
      },
    );
  });
});
