/**
 * Real permissions: the proxy CLI runs as an unprivileged user (root ignores file modes) with
 * part of its storage root read-only. The one-minute back-off and the recovery are tested in
 * process with an injected clock (disk-full.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CliProcess, startCli } from '../helpers/cli-process.ts';
import { sha256Hex } from '../helpers/crate-pack.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Who the CLI runs as, and the `setpriv` prefix that makes it so (none when not root). */
interface Unprivileged {
  uid: number;
  gid: number;
  wrapper: string[];
}

/**
 * As root, `nobody` through util-linux's `setpriv`; fails with a clear message when that cannot
 * work here (no `setpriv`, no `nobody`, the repository unreadable to it), never skips.
 */
async function unprivileged(): Promise<Unprivileged> {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? 0, wrapper: [] };
  try {
    const id = async (flag: string) =>
      Number((await execFileAsync('id', [flag, 'nobody'])).stdout.trim());
    const user = { uid: await id('-u'), gid: await id('-g') };
    const wrapper = [
      'setpriv',
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      '--clear-groups',
      '--',
    ];
    // The very node and sources the CLI will run, read as that user.
    const probe = `require('fs').accessSync(${JSON.stringify(MAIN)}); process.stdout.write(String(process.getuid()))`;
    const { stdout } = await execFileAsync(wrapper[0] as string, [
      ...wrapper.slice(1),
      process.execPath,
      '-e',
      probe,
    ]);
    assert.equal(Number(stdout), user.uid, 'setpriv did not change the user');
    return { ...user, wrapper };
  } catch (err) {
    throw new Error(
      'this test runs the proxy as the unprivileged user nobody, so that file permissions hold ' +
        '(root ignores them), and could not: it needs util-linux setpriv, a nobody user, and ' +
        `the repository and node readable to nobody. ${(err as Error).message}`,
    );
  }
}

interface World {
  upstream: FakeUpstream;
  storage: string;
  cli: CliProcess;
  get(path: string): ReturnType<typeof httpGet>;
}

/** A storage root owned by the unprivileged user; `prepare` runs before the CLI starts. */
async function world(t: TestContext, prepare: (storage: string) => Promise<void>): Promise<World> {
  const user = await unprivileged();
  const upstream = await startFakeUpstream({
    crates: [
      { name: 'fake-a', version: '0.1.0', padBytes: 300_000 },
      { name: 'fake-b', version: '0.2.0' },
    ],
  });
  t.after(() => upstream.close());
  const storage = await makeTempDir('unwritable');
  t.after(async () => {
    // Writable again, so that a non-root run can remove what it made read-only.
    for (const dir of ['crates', 'tmp']) await chmod(join(storage, dir), 0o755).catch(() => {});
    await removeTempDir(storage);
  });
  await chown(storage, user.uid, user.gid);
  await prepare(storage);
  const cli = await startCli(['-i', storage, '-s', upstream.indexUrl, '--no-git', '-dd'], {
    wrapper: user.wrapper,
    env: { HOME: storage },
  });
  t.after(() => cli.kill9());
  return { upstream, storage, cli, get: (path) => httpGet(`${cli.url}${path}`) };
}

/** Every file below `dir` (none when it does not exist). */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

/**
 * GETs /health and waits until its own request line is logged: every line logged before it
 * has then been read too (one stdout, in order), so counting log lines races nothing.
 */
async function healthAfterLogs(w: World): Promise<string> {
  const health = await w.get('/health?mark');
  for (let waited = 0; !w.cli.logs.some((line) => line.url === '/health?mark'); waited += 20) {
    assert.ok(waited < 10_000, 'the request line of /health was never logged');
    await delay(20);
  }
  return health.body.toString();
}

const unwritableLines = (cli: CliProcess) =>
  cli.logs.filter((line) => /storage not writable/.test(line.msg));

async function assertPassedThrough(w: World, name: string, version: string): Promise<void> {
  const response = await w.get(`/api/v1/crates/${name}/${version}/download`);
  assert.equal(response.status, 200, response.body.toString());
  assert.equal(response.headers['x-cargo-cacher-not-stored'], 'storage not writable');
  assert.equal(sha256Hex(response.body), w.upstream.crate(name, version).checksum);
}

describe('storage not writable (real permissions, unprivileged CLI)', () => {
  test('crates/ read-only: misses pass through verified, nothing lands, logged once', async (t) => {
    const w = await world(t, async (storage) => {
      await mkdir(join(storage, 'crates'), { mode: 0o555 });
      await chmod(join(storage, 'crates'), 0o555);
      const user = await unprivileged();
      await chown(join(storage, 'crates'), user.uid, user.gid);
    });
    await assertPassedThrough(w, 'fake-a', '0.1.0');
    await assertPassedThrough(w, 'fake-b', '0.2.0');
    await assertPassedThrough(w, 'fake-a', '0.1.0');
    assert.deepEqual(await filesBelow(join(w.storage, 'crates')), [], 'no file under crates/');
    assert.deepEqual(await filesBelow(join(w.storage, 'tmp')), [], 'the temp file was removed');
    const health = await healthAfterLogs(w);
    assert.equal(unwritableLines(w.cli).length, 1, 'one line, not one per request');
    const line = unwritableLines(w.cli)[0];
    assert.equal(line?.level, 'error');
    assert.ok(
      line?.msg.startsWith(
        `storage not writable (EACCES storing crates/fa/ke/fake-a/fake-a-0.1.0.crate at ${w.storage}/crates`,
      ),
      line?.msg,
    );
    assert.ok(health.includes('storage not writable'), health);
  });

  test('tmp/ read-only: index files and crates are served, none stored', async (t) => {
    const w = await world(t, async () => {});
    // After startup: the store checks at startup that it can write its temp directory.
    await chmod(join(w.storage, 'tmp'), 0o555);
    const index = await w.get('/index/fa/ke/fake-a');
    assert.equal(index.status, 200);
    assert.ok(index.body.toString().includes(w.upstream.crate('fake-a', '0.1.0').indexLine));
    await assertPassedThrough(w, 'fake-a', '0.1.0');
    for (const dir of ['index', 'crates', 'tmp']) {
      assert.deepEqual(await filesBelow(join(w.storage, dir)), [], `nothing under ${dir}/`);
    }
    await healthAfterLogs(w);
    assert.equal(unwritableLines(w.cli).length, 1, 'one line, not one per request');
    assert.ok(
      unwritableLines(w.cli)[0]?.msg.startsWith(
        `storage not writable (EACCES storing index/fa/ke/fake-a at ${w.storage}/tmp/`,
      ),
      unwritableLines(w.cli)[0]?.msg,
    );
  });
});
