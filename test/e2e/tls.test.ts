import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import type { FinishedRequest } from '../../src/observe/records.ts';
import { makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { gitEnv } from '../helpers/fake-git-index.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { makeTestCertificates, type TestCertificates } from '../helpers/tls-certs.ts';
import { toolAvailable } from '../helpers/tools.ts';
import { waitFor } from '../helpers/wait-for.ts';

const execFileAsync = promisify(execFile);

/** A small tree plus one 3 MB crate, so a download spans many HTTP/2 DATA frames. */
const CRATES: FakeCrateSpec[] = [
  { name: 'tls-a', version: '0.1.0' },
  { name: 'tls-b', version: '0.1.0', deps: [{ name: 'tls-a', req: '0.1' }] },
  { name: 'tls-big', version: '1.0.0', padBytes: 3 * 1024 * 1024 },
];
const DEPS = { 'tls-b': '0.1', 'tls-big': '1' };

/** True when every tool runs; skips the test otherwise (fails it on CI, see tools.ts). */
async function toolsAvailable(t: TestContext, tools: string[]): Promise<boolean> {
  for (const tool of tools) {
    const args = tool === 'openssl' ? ['version'] : ['--version'];
    if (!(await toolAvailable(t, tool, args))) return false;
  }
  return true;
}

interface World {
  upstream: FakeUpstream;
  proxy: RunningProxy;
  certs: TestCertificates;
  /** Every request the proxy finished, as its observers saw it. */
  seen: FinishedRequest[];
  dir: string;
}

/** A fake upstream, test certificates and a proxy serving HTTPS with them. */
async function startWorld(t: TestContext, options: { git?: boolean } = {}): Promise<World> {
  const dir = await makeTempDir('tls');
  t.after(() => removeTempDir(dir));
  const certs = await makeTestCertificates(dir);
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const seen: FinishedRequest[] = [];
  const gitUrl = options.git ? await upstream.enableGit(join(dir, 'upstream')) : undefined;
  const proxy = await startProxy({
    upstream,
    observers: [(record) => seen.push(record)],
    settings: { tls: { certFile: certs.certFile, keyFile: certs.keyFile } },
    ...(gitUrl && { gitUrl }),
  });
  t.after(() => proxy.close());
  return { upstream, proxy, certs, seen, dir };
}

/** An undici agent that trusts the test CA; `allowH2` picks HTTP/2 by ALPN. */
async function trustingAgent(t: TestContext, certs: TestCertificates, allowH2: boolean) {
  const agent = new Agent({ allowH2, connect: { ca: await readFile(certs.caFile) } });
  t.after(() => agent.close());
  return agent;
}

/** Reads a readable to the end. */
async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('HTTPS with HTTP/2 (--tls-cert, --tls-key)', () => {
  test('cargo resolves and fetches through sparse+https, multiplexed over HTTP/2', async (t) => {
    if (!(await toolsAvailable(t, ['cargo', 'openssl']))) return;
    const { proxy, certs, seen, upstream } = await startWorld(t);
    assert.match(proxy.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const box = await makeCargoSandbox({ registry: proxy.sparseRegistry, deps: DEPS });
    t.after(() => box.remove());
    // The sandbox turns multiplexing off for plain HTTP; over TLS cargo must use HTTP/2.
    delete box.env.CARGO_HTTP_MULTIPLEXING;
    box.env.CARGO_HTTP_CAINFO = certs.caFile;

    await box.cargo(['generate-lockfile']);
    await box.cargo(['fetch']);

    const cached = await readdir(join(box.cargoHome, 'registry', 'cache'), { recursive: true });
    const crates = cached.filter((name) => name.endsWith('.crate')).map((n) => n.split('/').pop());
    assert.deepEqual(crates.sort(), [
      'tls-a-0.1.0.crate',
      'tls-b-0.1.0.crate',
      'tls-big-1.0.0.crate',
    ]);

    const downloads = seen.filter((r) => r.kind === 'crate');
    const index = seen.filter((r) => r.kind === 'sparse-index');
    assert.equal(downloads.length, 3);
    assert.ok(index.length >= 3, `index requests: ${index.map((r) => r.url).join(', ')}`);
    for (const record of seen) {
      assert.equal(record.httpVersion, '2.0', `${record.method} ${record.url} over HTTP/2`);
      assert.equal(record.status, 200, `${record.url}`);
    }
    assert.equal(upstream.count('/dl/'), 3, 'each crate fetched upstream once');
  });

  test('serves config.json and streams a large crate to an HTTP/2 client', async (t) => {
    if (!(await toolsAvailable(t, ['openssl']))) return;
    const { proxy, certs, seen, upstream } = await startWorld(t);
    const dispatcher = await trustingAgent(t, certs, true);

    const config = await request(`${proxy.url}/index/config.json`, { dispatcher });
    assert.equal(config.statusCode, 200);
    // The dl must name the scheme and host the client used (here from `:authority`).
    const { dl } = (await config.body.json()) as { dl: string };
    assert.equal(dl, `${proxy.url}/api/v1/crates`);

    const big = upstream.crate('tls-big', '1.0.0');
    for (const expected of ['miss', 'hit']) {
      const res = await request(`${proxy.url}/api/v1/crates/tls-big/1.0.0/download`, {
        dispatcher,
      });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-cache-status'], expected === 'miss' ? 'MISS' : 'HIT');
      const body = Buffer.from(await res.body.arrayBuffer());
      assert.equal(body.length, big.bytes.length);
      assert.equal(createHash('sha256').update(body).digest('hex'), big.checksum);
    }
    assert.deepEqual(
      seen.map((r) => r.httpVersion),
      ['2.0', '2.0', '2.0'],
    );
  });

  test('shuts down while an HTTP/2 client keeps its connection, finishing its download', async (t) => {
    if (!(await toolsAvailable(t, ['openssl']))) return;
    const { proxy, certs, upstream } = await startWorld(t);
    // node:http2 rather than undici: undici fails its open streams on any GOAWAY, even the
    // graceful one (NO_ERROR, last stream id) that lets them finish (RFC 9113 §6.8).
    const session = connect(proxy.url, { ca: await readFile(certs.caFile) });
    t.after(() => session.destroy());
    const path = '/api/v1/crates/tls-big/1.0.0/download';
    await readStream(session.request({ ':path': path }));
    const stream = session.request({ ':path': path });
    await once(stream, 'response');
    // Headers in, body not read yet: the stream is open when the shutdown starts.
    const closing = proxy.close();
    const body = await readStream(stream);
    assert.equal(body.length, upstream.crate('tls-big', '1.0.0').bytes.length);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('close() still waiting after 10 s')), 10_000);
    });
    try {
      // The client never closes its session: close() must end it once the download is done.
      await Promise.race([closing, timeout]);
    } finally {
      clearTimeout(timer);
    }
  });

  test('an HTTP/1.1 client is served on the same port', async (t) => {
    if (!(await toolsAvailable(t, ['openssl']))) return;
    const { proxy, certs, seen, upstream } = await startWorld(t);
    const dispatcher = await trustingAgent(t, certs, false);

    const config = await request(`${proxy.url}/index/config.json`, { dispatcher });
    const { dl } = (await config.body.json()) as { dl: string };
    assert.equal(dl, `${proxy.url}/api/v1/crates`);
    const index = await request(`${proxy.url}/index/tl/s-/tls-a`, { dispatcher });
    assert.equal(index.statusCode, 200);
    assert.equal(await index.body.text(), `${upstream.crate('tls-a', '0.1.0').indexLine}\n`);
    const crate = await request(`${proxy.url}/api/v1/crates/tls-a/0.1.0/download`, { dispatcher });
    assert.equal(crate.statusCode, 200);
    assert.equal(
      (await crate.body.arrayBuffer()).byteLength,
      upstream.crate('tls-a', '0.1.0').bytes.length,
    );
    const health = await request(`${proxy.url}/health`, { dispatcher });
    assert.equal(((await health.body.json()) as { status: string }).status, 'ok');
    assert.deepEqual(
      seen.map((r) => r.httpVersion),
      ['1.1', '1.1', '1.1', '1.1'],
    );
  });

  test('git clones the index over https, with HTTP/1.1 and with HTTP/2', async (t) => {
    if (!(await toolsAvailable(t, ['git', 'openssl']))) return;
    const { proxy, certs, seen, dir } = await startWorld(t, { git: true });
    const mirror = proxy.deps.git;
    assert.ok(mirror);
    await waitFor(() => mirror.ready, 20_000, 'the first clone of the git index');
    const env = gitEnv(join(dir, 'home'));

    for (const version of ['HTTP/1.1', 'HTTP/2']) {
      seen.length = 0;
      const target = join(dir, `clone-${version.replace('/', '')}`);
      await execFileAsync(
        'git',
        ['-c', `http.sslCAInfo=${certs.caFile}`, '-c', `http.version=${version}`].concat([
          'clone',
          '--quiet',
          `${proxy.url}/index`,
          target,
        ]),
        { env },
      );
      const config = JSON.parse(await readFile(join(target, 'config.json'), 'utf8'));
      assert.match(config.dl, /^https:\/\/localhost:\d+\/api\/v1\/crates$/);
      const lines = await readFile(join(target, 'tl', 's-', 'tls-a'), 'utf8');
      assert.match(lines, /"name":"tls-a"/);
      const git = seen.filter((r) => r.kind === 'git');
      assert.ok(git.length >= 2, 'info/refs and git-upload-pack');
      const wanted = version === 'HTTP/2' ? '2.0' : '1.1';
      for (const record of git) assert.equal(record.httpVersion, wanted, record.url);
    }
  });

  test('the CLI refuses half a TLS setting and an unreadable file in one line', async (t) => {
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    const dir = await makeTempDir('tls-cli');
    t.after(() => removeTempDir(dir));
    const cases = [
      { args: ['--tls-cert', join(dir, 'cert.pem')], error: /--tls-cert and --tls-key/ },
      {
        args: ['--tls-cert', join(dir, 'missing.pem'), '--tls-key', join(dir, 'missing.key')],
        error: /cannot read --tls-cert file .*missing\.pem \(ENOENT\)/,
      },
    ];
    for (const { args, error } of cases) {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(repo, 'src/cli/main.ts'),
          '-p',
          '0',
          '--listen',
          '127.0.0.1',
        ].concat(['--no-git', '-i', join(dir, 'store'), ...args]),
        { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const [code] = await once(child, 'exit');
      clearTimeout(timer);
      assert.notEqual(code, 0);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, error);
    }
  });
});
