import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { openStatsDb } from '../../src/stats/db.ts';
import { type CliProcess, startCli } from '../helpers/cli-process.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { prng } from '../helpers/prng.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);

const SEED = Number(process.env.CRASH_SEED ?? 20261124);
const random = prng(SEED);

const CRATES: FakeCrateSpec[] = Array.from({ length: 24 }, (_, i) => ({
  name: `crash-${i}`,
  version: '1.0.0',
  padBytes: 150_000,
}));

interface World {
  upstream: FakeUpstream;
  storage: string;
  start(extra?: string[]): Promise<CliProcess>;
}

async function world(t: TestContext, gitDir?: string): Promise<World> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const storage = await makeTempDir('crash-store');
  t.after(() => removeTempDir(storage));
  const bare = gitDir ? await upstream.enableGit(gitDir) : undefined;
  const running: CliProcess[] = [];
  t.after(async () => {
    for (const cli of running) await cli.kill9();
  });
  return {
    upstream,
    storage,
    async start(extra = []) {
      const git = bare ? ['-g', bare, '-r', '1s'] : ['--no-git'];
      const cli = await startCli(['-i', storage, '-s', upstream.indexUrl, ...git, ...extra]);
      running.push(cli);
      return cli;
    },
  };
}

/** After a restart: no temporary file is left, and every stored crate is whole. */
async function assertIntact(world: World): Promise<number> {
  const temp = await readdir(join(world.storage, 'tmp')).catch(() => []);
  assert.deepEqual(temp, [], 'temporary files were cleaned at startup');
  return assertWhole(world);
}

/** Every crate below `crates/` matches upstream's checksum: nothing partial is published. */
async function assertWhole(world: World): Promise<number> {
  const files = (await readdir(join(world.storage, 'crates'), { recursive: true }).catch(() => []))
    .map(String)
    .filter((name) => name.endsWith('.crate'));
  for (const file of files) {
    const bytes = await readFile(join(world.storage, 'crates', file));
    const name = (file.split('/').pop() ?? '').replace(/-1\.0\.0\.crate$/, '');
    const expected = world.upstream.crate(name, '1.0.0').checksum;
    assert.equal(createHash('sha256').update(bytes).digest('hex'), expected, `${file} is whole`);
  }
  return files.length;
}

/**
 * Waits until a temporary file holds exactly `size` bytes. Index files pass through `tmp/` too,
 * briefly and far smaller, so only the held download's file matches; being held, it stays.
 */
async function tempFileHolding(storage: string, size: number): Promise<void> {
  const sizes = async () => {
    const names = await readdir(join(storage, 'tmp')).catch(() => []);
    const stats = names.map((name) => stat(join(storage, 'tmp', name)).catch(() => undefined));
    return (await Promise.all(stats)).map((info) => info?.size);
  };
  for (let i = 0; !(await sizes()).includes(size); i++) {
    assert.ok(i < 750, `no temporary file of ${size} bytes within 15 s`);
    await delay(20);
  }
}

function sqliteIntegrity(storage: string): string {
  const db = openStatsDb(join(storage, 'stats.sqlite'), { readonly: true });
  try {
    return String(db.pragma('integrity_check') ?? '');
  } finally {
    db.close();
  }
}

describe('kill -9 and restart', { timeout: 300_000 }, () => {
  test('during a download: the half-written file is never served and is cleaned', async (t) => {
    const w = await world(t);
    let cli = await w.start();
    // Upstream sends half the crate and holds the rest: the proxy is mid-write until killed.
    const gate = new Gate();
    w.upstream.setFault({ kind: 'gate', gate }, 'crate');
    const pending = httpGet(`${cli.url}/api/v1/crates/crash-0/1.0.0/download`).catch(
      () => undefined,
    );
    await gate.arrived(1);
    const { bytes } = w.upstream.crate('crash-0', '1.0.0');
    await tempFileHolding(w.storage, Math.floor(bytes.length / 2));
    await cli.kill9();
    await pending;
    w.upstream.setFault(undefined);
    cli = await w.start();
    assert.equal(await assertIntact(w), 0);
    const response = await httpGet(`${cli.url}/api/v1/crates/crash-0/1.0.0/download`);
    assert.deepEqual(response.body, w.upstream.crate('crash-0', '1.0.0').bytes);
  });

  test('during a prefetch, at random moments: only whole crates, and it completes', async (t) => {
    const w = await world(t);
    const list = join(w.storage, '..', `${SEED}-prefetch.txt`);
    await writeFile(list, CRATES.map((c) => `${c.name}=${c.version}`).join('\n'));
    t.after(() => removeTempDir(list));
    w.upstream.setFault({ kind: 'slow', delayMs: 40 }, 'crate');
    for (let round = 0; round < 3; round++) {
      const cli = await w.start(['-f', list, '-t', '4']);
      await delay(50 + random() * 400);
      await cli.kill9();
      await assertWhole(w);
    }
    // The prefetch resumes at once and writes temp files of its own: only the dead run's must go.
    const left = await readdir(join(w.storage, 'tmp'));
    const cli = await w.start(['-f', list, '-t', '4']);
    const survivors = (await readdir(join(w.storage, 'tmp'))).filter((name) => left.includes(name));
    assert.deepEqual(survivors, [], 'temporary files of the killed run were cleaned at startup');
    for (let i = 0; i < 400 && (await assertWhole(w)) < CRATES.length; i++) await delay(50);
    assert.equal(await assertWhole(w), CRATES.length);
    await cli.stop();
    assert.equal(await assertIntact(w), CRATES.length);
  });

  test('during stats flushes under traffic: SQLite stays intact', async (t) => {
    const w = await world(t);
    for (let round = 0; round < 3; round++) {
      const cli = await w.start();
      const stopAt = Date.now() + 1200 + random() * 900;
      const traffic = (async () => {
        for (let i = 0; Date.now() < stopAt; i++) {
          const crate = CRATES[i % CRATES.length] as FakeCrateSpec;
          await httpGet(`${cli.url}/api/v1/crates/${crate.name}/1.0.0/download`).catch(() => {});
        }
      })();
      await delay(stopAt - Date.now() - random() * 200);
      await cli.kill9();
      await traffic;
      assert.equal(sqliteIntegrity(w.storage), 'ok');
    }
    const cli = await w.start();
    assert.equal((await httpGet(`${cli.url}/api/v1/stats`)).status, 200);
    assert.equal(sqliteIntegrity(w.storage), 'ok');
    await assertIntact(w);
  });

  test('during git refreshes: the mirror restarts and serves its last good state', async (t) => {
    const home = await makeTempDir('crash-git');
    t.after(() => removeTempDir(home));
    const w = await world(t, join(home, 'upstream'));
    const mirror = join(w.storage, 'git', 'index.git');
    for (let round = 0; round < 4; round++) {
      const cli = await w.start();
      await w.upstream.addCrate({ name: `late-${round}`, version: '1.0.0' });
      await delay(300 + random() * 1500);
      await cli.kill9();
    }
    // What a kill in the middle of `git fetch` or `update-ref` leaves behind.
    await writeFile(join(mirror, 'refs', 'heads', 'master.lock'), '');
    await writeFile(join(mirror, 'packed-refs.lock'), '');
    // Upstream gone as well: only the last good state can be served.
    await w.upstream.close();
    const cli = await startCli(['-i', w.storage, '--offline', '-g', join(home, 'gone.git')]);
    t.after(() => cli.kill9());
    assert.ok(cli.logs.some((line) => /removed lock files/.test(line.msg)));
    const clone = join(home, 'clone');
    await execFileAsync('git', ['clone', '-q', `${cli.url}/index`, clone]);
    const config = JSON.parse(await readFile(join(clone, 'config.json'), 'utf8')) as { dl: string };
    assert.match(config.dl, /^http:\/\/(localhost|127\.0\.0\.1):\d+\/api\/v1\/crates$/);
    await execFileAsync('git', ['--git-dir', mirror, 'fsck', '--no-progress']);
    await execFileAsync('git', ['--git-dir', mirror, 'update-ref', 'refs/cacher/probe', 'HEAD']);
    await cli.stop();
  });
});
