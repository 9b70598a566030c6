import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Parser } from 'tar';
import { makeCargoSandbox, SANDBOX_PACKAGE } from '../helpers/cargo-sandbox.ts';
import { indexLine, packCrate, sha256Hex } from '../helpers/crate-pack.ts';
import { gitEnv } from '../helpers/fake-git-index.ts';
import type { FakeUpstream } from '../helpers/fake-upstream.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);
const A = { name: 'fake-a', version: '0.1.0' };
const B = { name: 'fake-b', version: '0.2.0', deps: [{ name: 'fake-a', req: '0.1' }] };
const PLUS = { name: 'plus', version: '1.0.0+build.5' };

async function listEntries(bytes: Buffer): Promise<string[]> {
  const paths: string[] = [];
  const parser = new Parser({
    onReadEntry: (entry) => {
      paths.push(entry.path);
      entry.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    parser.end(bytes);
  });
  return paths;
}

/** A GET whose body can be watched as it arrives. */
async function streamingGet(url: string) {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    get(url, { agent: false }, resolve).on('error', reject);
  });
  const chunks: Buffer[] = [];
  const arrivals = new EventEmitter();
  response.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    arrivals.emit('data');
  });
  const body = () => Buffer.concat(chunks);
  const watched = {
    status: response.statusCode,
    headers: response.headers,
    ended: false,
    body,
    done: once(response, 'end').then(() => {
      watched.ended = true;
      return body();
    }),
    /** Resolves once at least `count` bytes of the body have arrived. */
    async received(count: number): Promise<void> {
      while (body().length < count) await once(arrivals, 'data');
    },
  };
  return watched;
}

describe('crate-pack', () => {
  test('packs deterministic, real tarballs with dependency-calling sources', async () => {
    const bytes = await packCrate(B);
    assert.deepEqual(await packCrate(B), bytes);
    assert.deepEqual(await listEntries(bytes), [
      'fake-b-0.2.0/Cargo.toml',
      'fake-b-0.2.0/src/lib.rs',
    ]);
    const padded = await packCrate({ ...A, padBytes: 200_000 });
    assert.ok(padded.length > 200_000, 'padding stays incompressible');
    assert.ok((await listEntries(padded)).includes('fake-a-0.1.0/src/data.bin'));
  });

  test('writes index lines the way crates.io does', () => {
    const dep =
      '{"name":"fake-a","req":"^0.1","features":[],"optional":false,' +
      '"default_features":true,"target":null,"kind":"normal","registry":null}';
    const expected =
      `{"name":"fake-b","vers":"0.2.0","deps":[${dep}],"cksum":"ab",` +
      '"features":{},"yanked":false,"links":null,"v":1}';
    assert.equal(indexLine(B, 'ab'), expected);
  });
});

describe('fake upstream over HTTP', () => {
  let up: FakeUpstream;
  before(async () => {
    up = await startFakeUpstream({ crates: [A, B, PLUS] });
  });
  after(() => up.close());

  test('serves config.json and index files with validators', async () => {
    const config = await httpGet(`${up.indexUrl}config.json`);
    assert.deepEqual(JSON.parse(config.body.toString()), { dl: `${up.url}/dl`, api: up.url });
    const file = await httpGet(`${up.indexUrl}fa/ke/fake-a`);
    assert.equal(file.status, 200);
    assert.equal(file.headers['content-type'], 'text/plain');
    assert.equal(file.body.toString(), `${up.crate('fake-a', '0.1.0').indexLine}\n`);
    const etag = file.headers.etag ?? '';
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    assert.ok(file.headers['last-modified']);
    const again = await httpGet(`${up.indexUrl}fa/ke/fake-a`, { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal((await httpGet(`${up.indexUrl}no/ne/none`)).status, 404);
    await up.addCrate({ ...A, version: '0.1.1' });
    const changed = await httpGet(`${up.indexUrl}fa/ke/fake-a`, { 'if-none-match': etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.etag, etag);
    assert.equal(changed.body.toString().split('\n').length, 3);
    await up.yank('fake-a', '0.1.1');
    assert.match((await httpGet(`${up.indexUrl}fa/ke/fake-a`)).body.toString(), /"yanked":true/);
  });

  test('serves crate bytes matching the index checksum, directly and via redirect', async () => {
    const published = up.crate('fake-b', '0.2.0');
    const direct = await httpGet(`${up.url}/dl/fake-b/0.2.0/download`);
    assert.equal(direct.headers['content-type'], 'application/gzip');
    assert.equal(sha256Hex(direct.body), JSON.parse(published.indexLine).cksum);
    const redirect = await httpGet(`${up.url}/redirect/fake-b/0.2.0/download`);
    assert.equal(redirect.status, 302);
    const followed = await fetch(`${up.url}/redirect/fake-b/0.2.0/download`);
    assert.deepEqual(Buffer.from(await followed.arrayBuffer()), published.bytes);
    for (const version of ['1.0.0+build.5', '1.0.0%2Bbuild.5']) {
      const plus = await httpGet(`${up.url}/dl/plus/${version}/download`);
      assert.deepEqual(plus.body, up.crate('plus', '1.0.0+build.5').bytes);
    }
    assert.equal((await httpGet(`${up.url}/dl/fake-b/9.9.9/download`)).status, 404);
    assert.equal((await httpGet(`${up.url}/files/nope-1.0.0.crate`)).status, 404);
  });

  test('logs requests', async () => {
    up.resetLog();
    await httpGet(`${up.indexUrl}fa/ke/fake-a`, { 'x-test': 'yes' });
    await httpGet(`${up.url}/dl/fake-a/0.1.0/download`);
    assert.equal(up.requests.length, 2);
    assert.equal(up.requests[0]?.headers['x-test'], 'yes');
    assert.equal(up.count('/index/'), 1);
    assert.equal(
      up.count((r) => r.path.endsWith('/download')),
      1,
    );
  });

  test('injects status faults per scope', async (t) => {
    t.after(() => up.setFault(undefined));
    up.setFault({ kind: 'status', status: 503, retryAfter: 2 }, 'index');
    const index = await httpGet(`${up.indexUrl}fa/ke/fake-a`);
    assert.equal(index.status, 503);
    assert.equal(index.headers['retry-after'], '2');
    assert.equal((await httpGet(`${up.url}/dl/fake-a/0.1.0/download`)).status, 200);
  });

  test('slows, truncates and corrupts', async (t) => {
    t.after(() => up.setFault(undefined));
    const bytes = up.crate('fake-b', '0.2.0').bytes;
    const crateUrl = `${up.url}/dl/fake-b/0.2.0/download`;
    up.setFault({ kind: 'slow', delayMs: 300 });
    const started = Date.now();
    assert.equal((await httpGet(crateUrl)).status, 200);
    assert.ok(Date.now() - started >= 290);
    up.setFault({ kind: 'truncated' }, 'crate');
    const truncated = await httpGet(crateUrl);
    assert.equal(truncated.headers['content-length'], String(bytes.length));
    assert.equal(truncated.body.length, Math.floor(bytes.length / 2));
    assert.equal(truncated.complete, false);
    up.setFault({ kind: 'corrupt' });
    const corrupt = await httpGet(crateUrl);
    assert.equal(corrupt.body.length, bytes.length);
    assert.notDeepEqual(corrupt.body, bytes);
    const index = await httpGet(`${up.indexUrl}fa/ke/fake-b`);
    assert.equal(index.body.toString(), `${up.crate('fake-b', '0.2.0').indexLine}\n`);
  });

  test('holds a response at a gate: headers and half the body, the rest once opened', async (t) => {
    t.after(() => up.setFault(undefined));
    const bytes = up.crate('fake-b', '0.2.0').bytes;
    const half = Math.floor(bytes.length / 2);
    const crateUrl = `${up.url}/dl/fake-b/0.2.0/download`;
    const gate = new Gate();
    up.setFault({ kind: 'gate', gate }, 'crate');
    const held = await streamingGet(crateUrl);
    assert.equal(held.status, 200);
    assert.equal(held.headers['content-length'], String(bytes.length));
    await gate.arrived(1);
    await held.received(half);
    assert.equal(held.body().length, half, 'the first half, and nothing more while it is shut');
    assert.equal(held.ended, false);
    gate.open();
    assert.deepEqual(await held.done, bytes);
    // An open gate no longer holds anything.
    assert.deepEqual((await httpGet(crateUrl)).body, bytes);
    assert.equal(gate.arrivals, 2);

    // pass(1) lets one through and holds the next.
    const counting = new Gate();
    up.setFault({ kind: 'gate', gate: counting }, 'crate');
    counting.pass(1);
    assert.deepEqual((await httpGet(crateUrl)).body, bytes);
    const next = await streamingGet(crateUrl);
    await counting.arrived(2);
    await next.received(half);
    assert.equal(next.ended, false);
    counting.pass(1);
    assert.deepEqual(await next.done, bytes);
    await assert.rejects(new Gate().arrived(1, 10), /0 of 1 responses reached the gate/);
  });

  test('hangs until stopped, refuses while stopped, serves again after restart', async () => {
    const port = new URL(up.url).port;
    up.setFault({ kind: 'hang' });
    const pending = httpGet(`${up.indexUrl}config.json`);
    const outcome = pending.then(
      () => 'answered',
      () => 'failed',
    );
    assert.equal(await Promise.race([outcome, delay(300, 'waiting')]), 'waiting');
    up.setFault({ kind: 'slow', delayMs: 60_000 }, 'crate');
    const asked = up.count('/dl/');
    const slow = httpGet(`${up.url}/dl/fake-a/0.1.0/download`);
    // Stopped only once the slow request is in (its timer pending), not at a guessed moment.
    while (up.count('/dl/') === asked) await delay(5);
    await up.stop();
    assert.equal(await outcome, 'failed');
    await assert.rejects(slow);
    await assert.rejects(httpGet(`${up.indexUrl}config.json`), { code: 'ECONNREFUSED' });
    up.setFault(undefined);
    await up.restart();
    assert.equal(new URL(up.url).port, port);
    assert.equal((await httpGet(`${up.url}/dl/fake-a/0.1.0/download`)).status, 200);
  });
});

describe('fake upstream options', () => {
  test('dlTemplate and configOverride shape config.json', async (t) => {
    const redirecting = await startFakeUpstream({ crates: [A], dlTemplate: '{url}/redirect' });
    t.after(() => redirecting.close());
    const config = JSON.parse(
      (await httpGet(`${redirecting.indexUrl}config.json`)).body.toString(),
    );
    assert.equal(config.dl, `${redirecting.url}/redirect`);
    const broken = await startFakeUpstream({ configOverride: '{"dl": ' });
    t.after(() => broken.close());
    assert.equal((await httpGet(`${broken.indexUrl}config.json`)).body.toString(), '{"dl": ');
  });
});

describe('fake git index', () => {
  test('mirrors the index into a bare repo, commits changes and squashes', async (t) => {
    const dir = await makeTempDir('fake-git');
    t.after(() => removeTempDir(dir));
    const up = await startFakeUpstream({ crates: [A] });
    t.after(() => up.close());
    const bare = await up.enableGit(join(dir, 'index'));
    const git = async (...args: string[]) => {
      const env = gitEnv(join(dir, 'home'));
      return (await execFileAsync('git', args, { env })).stdout.trim();
    };
    const clone = join(dir, 'clone');
    await git('clone', '-q', bare, clone);
    assert.equal(await readFile(join(clone, 'config.json'), 'utf8'), up.configJson);
    const line = up.crate('fake-a', '0.1.0').indexLine;
    assert.equal(await readFile(join(clone, 'fa/ke/fake-a'), 'utf8'), `${line}\n`);
    await up.addCrate({ ...A, version: '0.2.0' });
    await git('-C', clone, 'fetch', '-q', 'origin');
    assert.match(await git('-C', clone, 'show', 'origin/master:fa/ke/fake-a'), /"vers":"0\.2\.0"/);
    assert.equal(await git('--git-dir', bare, 'rev-list', '--count', 'master'), '2');
    assert.equal(await git('--git-dir', bare, 'symbolic-ref', 'HEAD'), 'refs/heads/master');
    await up.squashGitHistory();
    assert.equal(await git('--git-dir', bare, 'rev-list', '--count', 'master'), '1');
    await git('-C', clone, 'fetch', '-q', 'origin');
    const tree = await git('--git-dir', bare, 'rev-parse', 'master^{tree}');
    assert.equal(await git('-C', clone, 'rev-parse', 'origin/master^{tree}'), tree);
  });
});

describe('real cargo against the fake upstream', () => {
  test('resolves, fetches and builds generated crates', async (t) => {
    const up = await startFakeUpstream({ crates: [A, B] });
    t.after(() => up.close());
    const sandbox = await makeCargoSandbox({
      registry: `sparse+${up.indexUrl}`,
      deps: { 'fake-a': '0.1', 'fake-b': '0.2' },
      mainRs: 'fn main() {\n    println!("{} {}", fake_b::name(), fake_b::dep_fake_a());\n}\n',
    });
    t.after(() => sandbox.remove());
    await sandbox.cargo(['generate-lockfile']);
    const lock = await readFile(join(sandbox.projectDir, 'Cargo.lock'), 'utf8');
    assert.ok(lock.includes(`checksum = "${up.crate('fake-b', '0.2.0').checksum}"`));
    assert.ok(lock.includes('source = "registry+https://github.com/rust-lang/crates.io-index"'));
    await sandbox.cargo(['fetch']);
    assert.equal(up.count('/dl/'), 2);
    await sandbox.cargo(['build', '--offline']);
    const binary = join(sandbox.targetDir, 'debug', SANDBOX_PACKAGE);
    const { stdout } = await execFileAsync(binary);
    assert.equal(stdout.trim(), 'fake-b-0.2.0 fake-a-0.1.0');
  });
});
