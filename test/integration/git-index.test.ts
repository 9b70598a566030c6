import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Config } from '../../src/config.ts';
import { gitEnv } from '../helpers/fake-git-index.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const execFileAsync = promisify(execFile);

const CRATES: FakeCrateSpec[] = [
  { name: 'fake-a', version: '0.1.0' },
  { name: 'fake-b', version: '0.2.0', deps: [{ name: 'fake-a', req: '0.1' }] },
  { name: 'abc', version: '1.0.0' },
];

const ADVERTISEMENT_TYPE = 'application/x-git-upload-pack-advertisement';
const REQUEST_TYPE = 'application/x-git-upload-pack-request';
const RESULT_TYPE = 'application/x-git-upload-pack-result';

/** A fake upstream with a git index, in a temp dir removed when the test ends. */
async function gitUpstream(
  t: TestContext,
): Promise<{ upstream: FakeUpstream; dir: string; bare: string }> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const dir = await makeTempDir('git-upstream');
  t.after(() => removeTempDir(dir));
  const bare = await upstream.enableGit(dir);
  return { upstream, dir, bare };
}

/** A proxy mirroring `gitUrl`, closed when the test ends; waits for the first clone unless told. */
async function gitProxy(
  t: TestContext,
  options: {
    upstream?: FakeUpstream;
    gitUrl: string;
    settings?: Partial<Config>;
    storageDir?: string;
    waitReady?: boolean;
  },
): Promise<RunningProxy> {
  const proxy = await startProxy({
    gitUrl: options.gitUrl,
    ...(options.upstream && { upstream: options.upstream }),
    ...(options.settings && { settings: options.settings }),
    ...(options.storageDir && { storageDir: options.storageDir }),
  });
  t.after(() => proxy.close());
  if (options.waitReady !== false) await waitForReady(proxy);
  return proxy;
}

async function waitForReady(proxy: RunningProxy): Promise<void> {
  const mirror = mirrorOf(proxy);
  await waitFor(() => mirror.ready, 20_000, 'the git mirror to become ready');
}

/**
 * The `dl` of the config.json in the served git history: the public URL, by default
 * `http://localhost:PORT` (the git history cannot follow each request's Host header).
 */
function gitDl(proxy: RunningProxy): string {
  const base = proxy.config.publicUrl ?? `http://localhost:${new URL(proxy.url).port}`;
  return `${base}/api/v1/crates`;
}

function mirrorOf(proxy: RunningProxy) {
  const mirror = proxy.deps.git;
  assert.ok(mirror, 'the proxy serves git');
  return mirror;
}

/** Runs git with `home` as HOME and no user or system config. */
async function git(
  home: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync('git', args, {
    env: { ...gitEnv(home), ...extraEnv },
    maxBuffer: 64 * 1024 * 1024,
  });
}

async function gitOut(home: string, args: string[]): Promise<string> {
  return (await git(home, args)).stdout.trim();
}

/** A scratch directory for clones (also used as git's HOME). */
async function scratch(t: TestContext): Promise<string> {
  const dir = await makeTempDir('git-clones');
  t.after(() => removeTempDir(dir));
  return dir;
}

/** `git ls-tree -r` of `rev` as path → "mode type blob" (same blob id = same bytes). */
async function treeOf(home: string, gitDir: string, rev: string): Promise<Map<string, string>> {
  const listing = await gitOut(home, ['--git-dir', gitDir, 'ls-tree', '-r', rev]);
  const entries = new Map<string, string>();
  for (const line of listing.split('\n')) {
    const [meta, path] = line.split('\t');
    if (meta && path) entries.set(path, meta);
  }
  return entries;
}

interface PostResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * POSTs `body` (with Content-Length, or chunked when `transfer-encoding` is set) and collects
 * the answer; resolves with status 0 when the server closed the connection without one.
 */
function post(url: string, headers: Record<string, string>, body: Buffer): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined);
      res.on('close', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') {
        resolve({ status: 0, headers: {}, body: Buffer.alloc(0) });
      } else reject(err);
    });
    if (headers['transfer-encoding'] !== 'chunked') {
      req.end(body);
      return;
    }
    for (let at = 0; at < body.length; at += 1 << 20) req.write(body.subarray(at, at + (1 << 20)));
    req.end();
  });
}

function pkt(text: string): string {
  return `${(text.length + 4).toString(16).padStart(4, '0')}${text}`;
}

/** `git upload-pack` processes whose arguments name `gitDir`. */
async function uploadPackProcesses(gitDir: string): Promise<string[]> {
  const { stdout } = await execFileAsync('ps', ['-eo', 'pid,args']);
  return stdout.split('\n').filter((line) => line.includes('upload-pack') && line.includes(gitDir));
}

describe('git index', () => {
  for (const version of [0, 2]) {
    test(`git clone with protocol v${version} gets upstream's HEAD plus one config commit`, async (t) => {
      const { upstream, bare } = await gitUpstream(t);
      const proxy = await gitProxy(t, { upstream, gitUrl: bare });
      const home = await scratch(t);
      const clone = join(home, 'clone');
      const { stderr } = await git(
        home,
        ['-c', `protocol.version=${version}`, 'clone', '-q', proxy.gitRegistry, clone],
        { GIT_TRACE_PACKET: '1' },
      );
      // The packet trace shows what the server answered: a v2 capability list, or v0's refs.
      if (version === 2) assert.match(stderr, /< version 2/, 'the server spoke protocol v2');
      else {
        assert.doesNotMatch(stderr, /< version 2/, 'the server spoke protocol v0');
        assert.match(stderr, /< # service=git-upload-pack/, 'a v0 advertisement was read');
      }

      const cloneGit = join(clone, '.git');
      const upstreamHead = await gitOut(home, ['--git-dir', bare, 'rev-parse', 'HEAD']);
      const parents = await gitOut(home, [
        '--git-dir',
        cloneGit,
        'rev-list',
        '--parents',
        '-n1',
        'HEAD',
      ]);
      assert.deepEqual(parents.split(' ').slice(1), [upstreamHead], 'one commit on upstream HEAD');

      const config = JSON.parse(await readFile(join(clone, 'config.json'), 'utf8'));
      assert.equal(config.dl, gitDl(proxy));
      // cargo appends /api/v1/... to api: search and metadata go through the proxy too.
      assert.equal(`${config.api}/api/v1/crates`, gitDl(proxy));

      const served = await treeOf(home, cloneGit, 'HEAD');
      const original = await treeOf(home, bare, 'HEAD');
      assert.notEqual(served.get('config.json'), original.get('config.json'));
      served.delete('config.json');
      original.delete('config.json');
      assert.ok(original.size >= CRATES.length);
      assert.deepEqual(served, original, 'every index file is upstream blob for blob');
      for (const crate of upstream.crates()) {
        const body = await readFile(join(clone, crate.indexPath), 'utf8');
        assert.ok(body.includes(crate.indexLine), `${crate.name} is in its index file`);
      }
    });
  }

  test('info/refs advertises upload-pack only, with the smart content type', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare });

    const refs = await httpGet(`${proxy.url}/index/info/refs?service=git-upload-pack`);
    assert.equal(refs.status, 200);
    assert.equal(refs.headers['content-type'], ADVERTISEMENT_TYPE);
    const text = refs.body.toString('latin1');
    assert.ok(text.startsWith(`${pkt('# service=git-upload-pack\n')}0000`), text.slice(0, 60));
    assert.match(text, / HEAD\0/);
    assert.match(text, /symref=HEAD:refs\/heads\/master/);
    assert.match(String(refs.headers['cache-control']), /no-cache/);

    const push = await httpGet(`${proxy.url}/index/info/refs?service=git-receive-pack`);
    assert.equal(push.status, 403);
    const pushPost = await post(
      `${proxy.url}/index/git-receive-pack`,
      { 'content-type': 'application/x-git-receive-pack-request' },
      Buffer.from('0000'),
    );
    assert.equal(pushPost.status, 403);
    const dumb = await httpGet(`${proxy.url}/index/info/refs`);
    assert.ok(dumb.status >= 400 && dumb.status < 500, `dumb info/refs: ${dumb.status}`);

    const wrongType = await post(
      `${proxy.url}/index/git-upload-pack`,
      { 'content-type': 'text/plain' },
      Buffer.from('0000'),
    );
    assert.ok(wrongType.status >= 400 && wrongType.status < 500, `status ${wrongType.status}`);
    const noType = await post(`${proxy.url}/index/git-upload-pack`, {}, Buffer.from('0000'));
    assert.ok(noType.status >= 400 && noType.status < 500, `status ${noType.status}`);
  });

  test('a gzip-encoded protocol v2 ls-refs request lists HEAD', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare });
    const served = await gitOut(await scratch(t), [
      '--git-dir',
      mirrorOf(proxy).gitDir,
      'rev-parse',
      'HEAD',
    ]);

    const v2refs = await httpGet(`${proxy.url}/index/info/refs?service=git-upload-pack`, {
      'Git-Protocol': 'version=2',
    });
    assert.equal(v2refs.status, 200);
    assert.equal(v2refs.headers['content-type'], ADVERTISEMENT_TYPE);
    assert.ok(v2refs.body.toString('latin1').startsWith(pkt('version 2\n')));

    const body = gzipSync(Buffer.from(`${pkt('command=ls-refs\n')}0001${pkt('symrefs\n')}0000`));
    const answer = await post(
      `${proxy.url}/index/git-upload-pack`,
      {
        'content-type': REQUEST_TYPE,
        'content-encoding': 'gzip',
        'git-protocol': 'version=2',
      },
      body,
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], RESULT_TYPE);
    const text = answer.body.toString('latin1');
    assert.match(text, new RegExp(`${served} HEAD symref-target:refs/heads/master`));
    assert.ok(text.endsWith('0000'), 'the answer is complete');
  });

  test('an oversized or garbled upload-pack body fails cleanly and the server stays up', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare });
    const served = await gitOut(await scratch(t), [
      '--git-dir',
      mirrorOf(proxy).gitDir,
      'rev-parse',
      'HEAD',
    ]);
    const headers = { 'content-type': REQUEST_TYPE };

    // 40 MiB of well-formed `have` lines after a want: git reads them all, so only the proxy's
    // body limit can stop it.
    const have = pkt(`have ${'1'.repeat(40)}\n`);
    const haves = Buffer.from(have.repeat(Math.ceil((40 * 1024 * 1024) / have.length)));
    const big = Buffer.concat([Buffer.from(`${pkt(`want ${served}\n`)}0000`), haves]);
    const declared = await post(`${proxy.url}/index/git-upload-pack`, headers, big);
    assert.equal(declared.status, 413, 'a too-large Content-Length is refused up front');
    const chunked = await post(
      `${proxy.url}/index/git-upload-pack`,
      { ...headers, 'transfer-encoding': 'chunked' },
      big,
    );
    // Past the limit mid-stream: 413 if the answer makes it out, else the connection is closed.
    assert.ok(chunked.status === 413 || chunked.status === 0, `chunked: ${chunked.status}`);

    const garbage = await post(
      `${proxy.url}/index/git-upload-pack`,
      headers,
      Buffer.from('this is not a pkt-line stream'),
    );
    assert.ok(garbage.status < 500, `garbage body: status ${garbage.status}`);

    const badGzip = await post(
      `${proxy.url}/index/git-upload-pack`,
      { ...headers, 'content-encoding': 'gzip' },
      Buffer.from('not gzip at all'),
    );
    assert.equal(badGzip.status, 400, 'a body that is not gzip is a bad request');

    const refs = await httpGet(`${proxy.url}/index/info/refs?service=git-upload-pack`);
    assert.equal(refs.status, 200, 'the server still answers');
    await waitFor(
      async () => (await uploadPackProcesses(mirrorOf(proxy).gitDir)).length === 0,
      10_000,
      'every upload-pack child to exit',
    );
  });

  test('git clients get 503 until the first clone works, which recovers without a restart', async (t) => {
    const { upstream, dir, bare } = await gitUpstream(t);
    const late = join(dir, 'late.git');
    const proxy = await gitProxy(t, {
      upstream,
      gitUrl: late,
      settings: { gitRefreshMs: 1000 },
      waitReady: false,
    });
    const mirror = mirrorOf(proxy);
    await waitFor(() => mirror.status().lastError !== undefined, 10_000, 'the clone to fail');
    assert.equal(mirror.ready, false);

    const refs = await httpGet(`${proxy.url}/index/info/refs?service=git-upload-pack`);
    assert.equal(refs.status, 503);
    assert.ok(Number(refs.headers['retry-after']) > 0, 'Retry-After is set');
    const pack = await post(
      `${proxy.url}/index/git-upload-pack`,
      { 'content-type': REQUEST_TYPE },
      Buffer.from('0000'),
    );
    assert.equal(pack.status, 503);
    const health = JSON.parse((await httpGet(`${proxy.url}/health`)).body.toString('utf8'));
    assert.equal(health.git.ready, false, '/health says the git index is not ready');
    assert.ok(health.git.lastError, '/health says why');

    const sparse = await httpGet(`${proxy.url}/index/fa/ke/fake-a`);
    assert.equal(sparse.status, 200, 'sparse clients are served meanwhile');
    assert.ok(sparse.body.toString('utf8').includes(upstream.crate('fake-a', '0.1.0').indexLine));

    const home = await scratch(t);
    await git(home, ['clone', '-q', '--bare', bare, late]);
    await waitForReady(proxy);
    assert.equal(mirror.status().lastError, undefined);
    const healthy = JSON.parse((await httpGet(`${proxy.url}/health`)).body.toString('utf8'));
    assert.equal(healthy.git.ready, true);
    const clone = join(home, 'clone');
    await git(home, ['clone', '-q', proxy.gitRegistry, clone]);
    const upstreamHead = await gitOut(home, ['--git-dir', bare, 'rev-parse', 'HEAD']);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-parse', 'HEAD^']), upstreamHead);
  });

  test('a refresh brings new versions to clients and survives a squashed history', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare, settings: { gitRefreshMs: 1000 } });
    const mirror = mirrorOf(proxy);
    const home = await scratch(t);
    const clone = join(home, 'clone');
    await git(home, ['clone', '-q', proxy.gitRegistry, clone]);

    const servedBefore = await gitOut(home, ['-C', clone, 'rev-parse', 'HEAD']);
    const added = await upstream.addCrate({ name: 'fake-c', version: '0.3.0' });
    const newHead = await gitOut(home, ['--git-dir', bare, 'rev-parse', 'HEAD']);
    await waitFor(() => mirror.status().upstreamHead === newHead, 15_000, 'the refresh');
    await git(home, ['-C', clone, 'fetch', '-q']);
    const file = await gitOut(home, ['-C', clone, 'show', `origin/master:${added.indexPath}`]);
    assert.equal(file, added.indexLine);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-parse', 'origin/master^']), newHead);

    // A client that read the refs before the refresh still gets the commit it was told about.
    const stale = await post(
      `${proxy.url}/index/git-upload-pack`,
      { 'content-type': REQUEST_TYPE },
      Buffer.from(`${pkt(`want ${servedBefore}\n`)}0000${pkt('done\n')}`),
    );
    assert.equal(stale.status, 200);
    assert.ok(stale.body.includes('PACK'), 'the old commit is still sent');

    await upstream.squashGitHistory();
    const squashed = await gitOut(home, ['--git-dir', bare, 'rev-parse', 'HEAD']);
    assert.equal(await gitOut(home, ['--git-dir', bare, 'rev-list', '--count', 'HEAD']), '1');
    await waitFor(() => mirror.status().upstreamHead === squashed, 15_000, 'the squash refresh');
    assert.equal(mirror.status().lastError, undefined);
    const servedParents = await gitOut(home, [
      '--git-dir',
      mirror.gitDir,
      'rev-list',
      '--parents',
      '-n1',
      'HEAD',
    ]);
    assert.deepEqual(servedParents.split(' ').slice(1), [squashed]);

    await git(home, ['-C', clone, 'fetch', '-q']);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-parse', 'origin/master^']), squashed);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-list', '--count', 'origin/master']), '2');
    const after = await gitOut(home, ['-C', clone, 'show', `origin/master:${added.indexPath}`]);
    assert.equal(after, added.indexLine);
  });

  test('a failed refresh keeps serving the last good index, and the next one recovers', async (t) => {
    const { upstream, dir, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare });
    const mirror = mirrorOf(proxy);
    const home = await scratch(t);
    const served = await gitOut(home, ['--git-dir', mirror.gitDir, 'rev-parse', 'HEAD']);

    const moved = join(dir, 'moved.git');
    await rename(bare, moved);
    assert.equal(await mirror.refresh(), false);
    const failed = mirror.status();
    assert.ok(failed.lastError, 'the failure is reported');
    assert.equal(failed.ready, true);

    // The last good upstream index, rebuilt for the outage: it lists only what is held, here
    // nothing, so cargo resolves only to what it can download.
    const clone = join(home, 'clone');
    await git(home, ['clone', '-q', proxy.gitRegistry, clone]);
    const lastGood = await gitOut(home, ['--git-dir', mirror.gitDir, 'rev-parse', `${served}^`]);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-parse', 'HEAD^']), lastGood);
    assert.equal(await gitOut(home, ['-C', clone, 'ls-files']), 'config.json');
    const config = JSON.parse(await readFile(join(clone, 'config.json'), 'utf8'));
    assert.equal(config.dl, gitDl(proxy));

    await rename(moved, bare);
    await upstream.addCrate({ name: 'fake-a', version: '0.1.1' });
    assert.equal(await mirror.refresh(), true);
    assert.equal(mirror.status().lastError, undefined);
    await git(home, ['-C', clone, 'fetch', '-q']);
    const upstreamHead = await gitOut(home, ['--git-dir', bare, 'rev-parse', 'HEAD']);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-parse', 'origin/master^']), upstreamHead);
  });

  test('the upload-pack child is killed when the client goes away', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare });
    const gitDir = mirrorOf(proxy).gitDir;
    const served = await gitOut(await scratch(t), ['--git-dir', gitDir, 'rev-parse', 'HEAD']);

    const req = request(`${proxy.url}/index/git-upload-pack`, {
      method: 'POST',
      headers: { 'content-type': REQUEST_TYPE, 'transfer-encoding': 'chunked' },
      agent: false,
    });
    req.on('error', () => undefined);
    // A want and no flush: upload-pack waits for the rest of a body that never comes.
    req.write(pkt(`want ${served}\n`));
    await waitFor(
      async () => (await uploadPackProcesses(gitDir)).length > 0,
      10_000,
      'upload-pack to start',
    );
    req.destroy();
    await waitFor(
      async () => (await uploadPackProcesses(gitDir)).length === 0,
      10_000,
      'upload-pack to be killed',
    );
  });

  test('with --sparse none the sparse index and downloads are answered from the git mirror', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { gitUrl: bare, settings: { sparseUpstream: undefined } });
    assert.equal(proxy.config.sparseUpstream, undefined);
    upstream.resetLog();

    const config = await httpGet(`${proxy.url}/index/config.json`);
    assert.equal(config.status, 200);
    const parsed = JSON.parse(config.body.toString('utf8'));
    assert.equal(parsed.dl, `${proxy.url}/api/v1/crates`);
    assert.equal(parsed.api, proxy.url);

    const b = upstream.crate('fake-b', '0.2.0');
    const file = await httpGet(`${proxy.url}/index/${b.indexPath}`);
    assert.equal(file.status, 200);
    assert.equal(file.body.toString('utf8'), `${b.indexLine}\n`);
    const missing = await httpGet(`${proxy.url}/index/no/ne/nonexistent`);
    assert.equal(missing.status, 404);

    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-b/0.2.0/download`);
    assert.equal(crate.status, 200);
    assert.equal(createHash('sha256').update(crate.body).digest('hex'), b.checksum);
    assert.equal(upstream.count('/index/'), 0, 'the sparse upstream was never asked');
    assert.equal(upstream.count('/dl/fake-b/0.2.0/download'), 1);
  });

  test('a restart on the same storage serves the same HEAD commit', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const storageDir = await makeTempDir('git-restart-store');
    t.after(() => removeTempDir(storageDir));
    const publicUrl = 'http://cargo-cacher.test:8080';
    const home = await scratch(t);
    const first = await gitProxy(t, {
      upstream,
      gitUrl: bare,
      storageDir,
      settings: { publicUrl },
    });
    const servedBefore = await gitOut(home, [
      '--git-dir',
      first.deps.git?.gitDir ?? '',
      'rev-parse',
      'HEAD',
    ]);
    const refsBefore = await httpGet(`${first.url}/index/info/refs?service=git-upload-pack`);
    await first.close();

    const second = await gitProxy(t, {
      upstream,
      gitUrl: bare,
      storageDir,
      settings: { publicUrl },
    });
    // The restarted mirror is ready from the start; wait for its own first refresh too.
    const mirror = mirrorOf(second);
    await waitFor(() => mirror.status().lastSuccessAt !== undefined, 10_000, 'the first refresh');
    const refsAfter = await httpGet(`${second.url}/index/info/refs?service=git-upload-pack`);
    assert.equal(refsAfter.status, 200);
    assert.ok(refsAfter.body.toString('latin1').includes(servedBefore));
    assert.deepEqual(refsAfter.body, refsBefore.body);
    const clone = join(home, 'clone');
    await git(home, ['clone', '-q', second.gitRegistry, clone]);
    assert.equal(await gitOut(home, ['-C', clone, 'rev-parse', 'HEAD']), servedBefore);
    const config = JSON.parse(await readFile(join(clone, 'config.json'), 'utf8'));
    assert.equal(config.dl, `${publicUrl}/api/v1/crates`);
  });
  test('a restart with another public URL serves it even while upstream is unreachable', async (t) => {
    const { upstream, dir, bare } = await gitUpstream(t);
    const storageDir = await makeTempDir('git-restart-store');
    t.after(() => removeTempDir(storageDir));
    const home = await scratch(t);
    const first = await gitProxy(t, {
      upstream,
      gitUrl: bare,
      storageDir,
      settings: { publicUrl: 'http://old.example:8080' },
    });
    await first.close();
    await rename(bare, join(dir, 'gone.git'));

    const publicUrl = 'http://new.example:8080';
    const second = await gitProxy(t, {
      upstream,
      gitUrl: bare,
      storageDir,
      settings: { publicUrl },
    });
    const mirror = mirrorOf(second);
    await waitFor(() => mirror.status().lastError !== undefined, 10_000, 'the refresh to fail');
    const clone = join(home, 'clone');
    await git(home, ['clone', '-q', second.gitRegistry, clone]);
    const config = JSON.parse(await readFile(join(clone, 'config.json'), 'utf8'));
    assert.equal(config.dl, `${publicUrl}/api/v1/crates`);
  });

  test('closing the proxy during a first clone that hangs ends promptly', async (t) => {
    // An HTTP "upstream" that accepts connections and never answers.
    const sockets = new Set<Socket>();
    const silent = createNetServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const { port } = silent.address() as AddressInfo;
    const upstream = await startFakeUpstream({ crates: CRATES });
    t.after(() => upstream.close());
    const proxy = await gitProxy(t, {
      upstream,
      gitUrl: `http://127.0.0.1:${port}/index.git`,
      waitReady: false,
    });
    // git fetch and its git-remote-http helper both carry the URL in their arguments.
    const fetches = async () => {
      const { stdout } = await execFileAsync('ps', ['-eo', 'pid,args']);
      return stdout.split('\n').filter((line) => line.includes(`127.0.0.1:${port}/index.git`));
    };
    await waitFor(() => sockets.size > 0, 10_000, 'git to connect');
    assert.ok((await fetches()).length > 0, 'the first clone is running');
    const closed = await Promise.race([
      proxy.close().then(() => true),
      delay(5000).then(() => false),
    ]);
    assert.ok(closed, 'close() returned within 5 s');
    await waitFor(async () => (await fetches()).length === 0, 10_000, 'git fetch to be gone');
  });

  test('sparse requests are answered from the git mirror when the sparse upstream is down', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    const proxy = await gitProxy(t, { upstream, gitUrl: bare });
    upstream.setFault({ kind: 'status', status: 503 }, 'index');

    const b = upstream.crate('fake-b', '0.2.0');
    const file = await httpGet(`${proxy.url}/index/${b.indexPath}`);
    assert.equal(file.status, 200);
    assert.equal(file.body.toString('utf8'), `${b.indexLine}\n`);
    const config = await httpGet(`${proxy.url}/index/config.json`);
    assert.equal(config.status, 200);
    assert.equal(JSON.parse(config.body.toString('utf8')).dl, `${proxy.url}/api/v1/crates`);

    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-b/0.2.0/download`);
    assert.equal(crate.status, 200);
    assert.equal(createHash('sha256').update(crate.body).digest('hex'), b.checksum);
  });
  test('a cached index file is served stale, never replaced by an older git copy', async (t) => {
    const { upstream, bare } = await gitUpstream(t);
    // TTL 0: every request revalidates; the mirror is not refreshed again during the test.
    const proxy = await gitProxy(t, { upstream, gitUrl: bare, settings: { indexTtlMs: 0 } });
    const newer = await upstream.addCrate({ name: 'fake-a', version: '0.1.1' });
    const fresh = await upstream.addCrate({ name: 'brand-new', version: '1.0.0' });
    const before = await httpGet(`${proxy.url}/index/${newer.indexPath}`);
    assert.ok(before.body.toString('utf8').includes(newer.indexLine));
    assert.equal((await httpGet(`${proxy.url}/index/${fresh.indexPath}`)).status, 200);
    // Held, so the stale copies (which list only what is held) still name them.
    for (const crate of [newer, fresh]) {
      const url = `${proxy.url}/api/v1/crates/${crate.name}/${crate.version}/download`;
      assert.equal((await httpGet(url)).status, 200);
    }

    upstream.setFault({ kind: 'status', status: 503 }, 'index');
    const stale = await httpGet(`${proxy.url}/index/${newer.indexPath}`);
    assert.equal(stale.status, 200);
    assert.ok(stale.body.toString('utf8').includes(newer.indexLine), 'the newer version stays');
    const kept = await httpGet(`${proxy.url}/index/${fresh.indexPath}`);
    assert.equal(kept.status, 200, 'a crate the mirror has not seen yet is not forgotten');
    assert.equal(kept.body.toString('utf8'), `${fresh.indexLine}\n`);
  });
});
