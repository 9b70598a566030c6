import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isValidCrateName } from '../../src/registry/crate-name.ts';
import { isValidVersion } from '../../src/registry/version.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { createFuzzer, type RawAnswer, sendRaw } from '../helpers/fuzz-requests.ts';
import { httpGet } from '../helpers/http-get.ts';
import { prng } from '../helpers/prng.ts';
import { startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

/** `FUZZ_SEED=… FUZZ_COUNT=…` replay or widen a run; the defaults keep it to seconds. */
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const DEADLINE_MS = 90_000;
const WORKERS = 8;
const CANARY = `canary-${SEED}-never-served`;
/** What the storage root may hold at its top level. */
const STORAGE_ENTRIES = new Set([
  'tmp',
  'index',
  'crates',
  'git',
  'stats.sqlite',
  'catalogue.sqlite',
]);
const SQLITE_SIDE_FILES = /^(stats|catalogue)\.sqlite-(wal|shm|journal)$/;

/** What the proxy may ask the fake upstream for: index files of valid names, config, crates. */
function isPathOurCodeBuilds(path: string): boolean {
  if (path === '/index/config.json') return true;
  const index = /^\/index\/(?:1\/|2\/|3\/[^/]\/|[^/]{2}\/[^/]{2}\/)([^/]+)$/.exec(path);
  if (index) return isValidCrateName(decodeURIComponent(index[1] as string));
  const download = /^\/dl\/([^/]+)\/([^/]+)\/download$/.exec(path);
  if (!download) return false;
  return (
    isValidCrateName(decodeURIComponent(download[1] as string)) &&
    isValidVersion(decodeURIComponent(download[2] as string))
  );
}

async function snapshot(dir: string): Promise<string> {
  const names = (await readdir(dir, { recursive: true })).map(String).sort();
  const rows = await Promise.all(
    names.map(async (name) => {
      const info = await stat(join(dir, name));
      return `${name} ${info.size} ${info.mtimeMs} ${info.atimeMs}`;
    }),
  );
  return rows.join('\n');
}

test('thousands of hostile requests: no proxy 5xx, no crash, nothing outside storage', {
  timeout: DEADLINE_MS + 60_000,
}, async (t) => {
  const parent = await makeTempDir('fuzz');
  t.after(() => removeTempDir(parent));
  const storageDir = join(parent, 'storage');
  const sibling = join(parent, 'sibling');
  await mkdir(storageDir);
  await mkdir(sibling);
  await writeFile(join(sibling, 'canary.txt'), CANARY);
  await mkdir(join(sibling, 'crates'));
  await writeFile(join(sibling, 'crates', 'fake-a-0.1.0.crate'), CANARY);
  const before = await snapshot(sibling);

  const upstream = await startFakeUpstream({
    crates: [
      { name: 'fake-a', version: '0.1.0' },
      { name: 'serde', version: '1.0.0' },
      { name: 'plus', version: '1.0.0+build.5' },
    ],
  });
  t.after(() => upstream.close());
  const bare = await upstream.enableGit(join(parent, 'upstream-git'));
  const proxy = await startProxy({ upstream, gitUrl: bare, storageDir });
  t.after(() => proxy.close());
  const asked: string[] = [];
  const get = proxy.http.get.bind(proxy.http);
  proxy.http.get = (url, headers) => {
    asked.push(url);
    return get(url, headers);
  };
  for (let i = 0; i < 200 && !proxy.deps.git?.ready; i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.ok(proxy.deps.git?.ready, 'the git mirror is ready before the fuzzing starts');

  const port = Number(new URL(proxy.url).port);
  const next = createFuzzer(prng(SEED));
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const deadline = Date.now() + DEADLINE_MS;
  let sent = 0;
  const worker = async () => {
    while (sent < COUNT && Date.now() < deadline && failures.length < 20) {
      sent += 1;
      const request = next();
      let answer: RawAnswer;
      try {
        answer = await sendRaw(port, request.bytes);
      } catch (err) {
        failures.push(`${request.label}: ${(err as Error).message}`);
        continue;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      if (answer.status >= 500) failures.push(`${request.label}: ${answer.text.slice(0, 400)}`);
      if (answer.text.includes(CANARY)) failures.push(`${request.label}: served the canary`);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  t.diagnostic(`seed ${SEED}: ${sent} requests, statuses ${JSON.stringify([...statuses])}`);
  assert.deepEqual(failures, [], `seed ${SEED}`);
  assert.ok(sent >= Math.min(COUNT, 1000), `sent ${sent}`);

  assert.equal((await httpGet(`${proxy.url}/health`)).status, 200, 'still answering');
  assert.equal(await snapshot(sibling), before, 'nothing outside storage was touched');
  for (const entry of await readdir(storageDir)) {
    assert.ok(STORAGE_ENTRIES.has(entry) || SQLITE_SIDE_FILES.test(entry), `unexpected ${entry}`);
  }
  const stored = (await readdir(storageDir, { recursive: true })).map(String);
  assert.ok(!stored.some((name) => name.includes('..') || name.includes('\0')), 'odd file names');
  const origin = new URL(upstream.url).origin;
  for (const url of asked) {
    assert.equal(new URL(url).origin, origin, `only the configured upstream: ${url}`);
  }
  const bad = upstream.requests.filter((request) => !isPathOurCodeBuilds(request.path));
  assert.deepEqual(
    bad.map((request) => request.path),
    [],
    'upstream only saw valid paths',
  );
});
