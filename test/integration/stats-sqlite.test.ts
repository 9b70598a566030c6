import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openStatsDb } from '../../src/stats/db.ts';
import { readTotals } from '../../src/stats/queries.ts';
import { seedStatsHistory } from '../helpers/stats-history.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await removeTempDir(dir);
});

async function tempDir(): Promise<string> {
  const dir = await makeTempDir('stats-sqlite');
  dirs.push(dir);
  return dir;
}

const META_ROWS = 'SELECT count(*) AS n FROM meta';

function metaRows(db: ReturnType<typeof openStatsDb>): number {
  return (db.sqlite.prepare(META_ROWS).get() as { n: number }).n;
}

describe('statistics database on node:sqlite', () => {
  test('a write that throws leaves nothing behind; a nested one is a savepoint', async () => {
    const db = openStatsDb(join(await tempDir(), 'stats.sqlite'));
    const insert = db.sqlite.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    const before = metaRows(db);
    assert.throws(
      () =>
        db.write(() => {
          insert.run('a', '1');
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(metaRows(db), before, 'the outer write was rolled back');
    db.write(() => {
      insert.run('b', '1');
      assert.throws(() =>
        db.write(() => {
          insert.run('c', '1');
          throw new Error('inner');
        }),
      );
    });
    assert.equal(metaRows(db), before + 1, 'only the failed savepoint was rolled back');
    db.write(() => insert.run('d', '1'));
    assert.equal(metaRows(db), before + 2, 'the connection writes again after both');
    db.close();
  });

  test('pragmas read as their first column; read-only opens refuse writes', async () => {
    const dir = await tempDir();
    const path = join(dir, 'stats.sqlite');
    const db = openStatsDb(path);
    assert.equal(db.pragma('journal_mode'), 'wal');
    assert.equal(db.pragma('integrity_check'), 'ok');
    db.close();
    seedStatsHistory(dir);
    const reader = openStatsDb(path, { readonly: true });
    assert.ok(readTotals(reader).all.requests > 0);
    assert.throws(() => reader.sqlite.exec("INSERT INTO meta VALUES ('x', 'y')"), /readonly/);
    reader.close();
  });

  // Node 22 prints "ExperimentalWarning: SQLite is an experimental feature" when node:sqlite is
  // first loaded; Node 24 prints nothing. The suite runs on both in CI.
  test('the CLI prints no SQLite ExperimentalWarning, started either way', async () => {
    const dir = await tempDir();
    seedStatsHistory(dir);
    const launchers = [
      ['bin/cargo-cacher', []],
      [process.execPath, ['--import', 'tsx', 'src/cli/main.ts']],
    ] as const;
    for (const [file, args] of launchers) {
      const { stdout, stderr } = await execFileAsync(file, [...args, 'stats', '-i', dir], {
        cwd: REPO,
        env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH}` },
      });
      assert.match(stdout, /hit ratio/i, `${file} printed the summary`);
      assert.equal(stderr, '', `${file} printed nothing on stderr`);
    }
  });
});
