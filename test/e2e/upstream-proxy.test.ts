/**
 * The outbound proxy with a real forward proxy (tinyproxy): index files, crates and the git
 * mirror reach the upstream only through it (its log names every request, and every request the
 * upstream sees carries its Via header), NO_PROXY bypasses it, CONNECT carries https upstreams,
 * and credentials in its URL work without showing anywhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { finished, startCli } from '../helpers/cli-process.ts';
import type { FakeCrateSpec, LoggedRequest } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type ForwardProxy, startForwardProxy } from '../helpers/forward-proxy.ts';
import { startGitHttpServer } from '../helpers/git-http-server.ts';
import { httpGet } from '../helpers/http-get.ts';
import { startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { makeTestCertificates } from '../helpers/tls-certs.ts';
import { toolAvailable } from '../helpers/tools.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CRATES: FakeCrateSpec[] = [
  { name: 'via-a', version: '0.1.0' },
  { name: 'via-b', version: '0.2.0', deps: [{ name: 'via-a', req: '0.1' }] },
];
const INDEX_FILE = '/index/vi/a-/via-a';
const CRATE = '/api/v1/crates/via-a/0.1.0/download';

/** tinyproxy (and, where named, other tools) runs here; skips off CI, fails on CI. */
async function toolsAvailable(t: TestContext, ...tools: string[]): Promise<boolean> {
  for (const tool of ['tinyproxy', ...tools]) {
    const args = tool === 'tinyproxy' ? ['-v'] : tool === 'openssl' ? ['version'] : ['--version'];
    if (!(await toolAvailable(t, tool, args))) return false;
  }
  return true;
}

async function fakeUpstream(t: TestContext, tls?: { cert: Buffer; key: Buffer }) {
  const upstream = await startFakeUpstream({ crates: CRATES, ...(tls && { tls }) });
  t.after(() => upstream.close());
  return upstream;
}

/** tinyproxy adds a Via header to what it forwards: a request without one came directly. */
function throughProxy(request: LoggedRequest): boolean {
  return /tinyproxy/.test(String(request.headers.via ?? ''));
}

/** The forwarded requests of `proxy`'s log that went to `origin` (`http://127.0.0.1:PORT`). */
async function forwardedTo(proxy: ForwardProxy, origin: string): Promise<string[]> {
  return (await proxy.requests()).filter((line) => line.split(' ')[1]?.startsWith(`${origin}/`));
}

describe('outbound proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, --upstream-proxy)', () => {
  test('cargo resolves and fetches while every upstream request goes through the proxy', async (t) => {
    if (!(await toolsAvailable(t, 'cargo'))) return;
    const forward = await startForwardProxy(t);
    const upstream = await fakeUpstream(t);
    const proxy = await startProxy({
      upstream,
      settings: { proxyEnv: { HTTP_PROXY: forward.url, HTTPS_PROXY: forward.url } },
    });
    t.after(() => proxy.close());
    const box = await makeCargoSandbox({
      registry: proxy.sparseRegistry,
      deps: { 'via-b': '0.2' },
    });
    t.after(() => box.remove());

    await box.cargo(['generate-lockfile']);
    await box.cargo(['fetch']);

    const cached = await readdir(join(box.cargoHome, 'registry', 'cache'), { recursive: true });
    const crates = cached.filter((name) => name.endsWith('.crate')).map((n) => n.split('/').pop());
    assert.deepEqual(crates.sort(), ['via-a-0.1.0.crate', 'via-b-0.2.0.crate']);
    assert.equal(upstream.count('/dl/'), 2, 'both crates fetched upstream');
    assert.ok(upstream.count('/index/') >= 3, 'config.json and both index files');
    const direct = upstream.requests.filter((request) => !throughProxy(request));
    assert.deepEqual(direct, [], 'no request reached the upstream directly');
    // The proxy's own log names each of them, in the absolute form of plain forwarding.
    const logged = await forwardedTo(forward, upstream.url);
    assert.deepEqual(
      logged.sort(),
      upstream.requests.map((request) => `GET ${upstream.url}${request.path}`).sort(),
    );
    const health = (await (await fetch(`${proxy.url}/health`)).json()) as Record<string, unknown>;
    assert.deepEqual(health.upstreamProxy, {
      source: 'environment',
      http: forward.url,
      https: forward.url,
    });
  });

  test('NO_PROXY naming the upstream host bypasses the proxy', async (t) => {
    if (!(await toolsAvailable(t))) return;
    const forward = await startForwardProxy(t);
    const upstream = await fakeUpstream(t);
    const proxy = await startProxy({
      upstream,
      settings: { proxyEnv: { http_proxy: forward.url, NO_PROXY: 'localhost,127.0.0.1' } },
    });
    t.after(() => proxy.close());

    assert.equal((await httpGet(`${proxy.url}${INDEX_FILE}`)).status, 200);
    assert.equal((await httpGet(`${proxy.url}${CRATE}`)).status, 200);

    assert.ok(upstream.count('/dl/') === 1 && upstream.count(INDEX_FILE) === 1);
    assert.deepEqual(upstream.requests.filter(throughProxy), [], 'nothing came through the proxy');
    assert.deepEqual(await forward.requests(), [], "the proxy's log shows no request");
  });

  test('https upstreams are tunnelled with CONNECT', async (t) => {
    if (!(await toolsAvailable(t, 'openssl'))) return;
    const dir = await makeTempDir('proxy-connect');
    t.after(() => removeTempDir(dir));
    const certs = await makeTestCertificates(dir);
    const tls = { cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) };
    const upstream = await fakeUpstream(t, tls);
    const upstreamPort = Number(new URL(upstream.url).port);
    const forward = await startForwardProxy(t, { connectPorts: [upstreamPort] });
    const proxy = await startProxy({
      upstream,
      settings: { upstreamProxy: forward.url, upstreamCa: certs.caFile },
    });
    t.after(() => proxy.close());

    assert.equal((await httpGet(`${proxy.url}${INDEX_FILE}`)).status, 200);
    assert.equal((await httpGet(`${proxy.url}${CRATE}`)).status, 200);

    // Inside a tunnel the proxy sees neither paths nor headers: only the CONNECTs.
    const logged = await forward.requests();
    assert.ok(logged.length > 0, 'the proxy carried the requests');
    assert.deepEqual(
      [...new Set(logged)],
      [`CONNECT 127.0.0.1:${upstreamPort}`],
      `only tunnels to the upstream: ${logged.join(', ')}`,
    );
    assert.equal(upstream.count('/dl/'), 1);
  });

  test('credentials in --upstream-proxy work and show in no log line, /health or --help', async (t) => {
    if (!(await toolsAvailable(t))) return;
    const forward = await startForwardProxy(t, {
      basicAuth: { user: 'builder', password: 'hunter2-secret' },
    });
    const upstream = await fakeUpstream(t);
    const storage = await makeTempDir('proxy-credentials');
    t.after(() => removeTempDir(storage));
    const cli = await startCli([
      '-i',
      storage,
      '-s',
      upstream.indexUrl,
      '--no-git',
      '-dd',
      '--upstream-proxy',
      forward.urlWithCredentials,
    ]);
    t.after(() => cli.stop());

    assert.equal((await httpGet(`${cli.url}${INDEX_FILE}`)).status, 200);
    assert.equal((await httpGet(`${cli.url}${CRATE}`)).status, 200);
    const health = await httpGet(`${cli.url}/health`);

    assert.ok(upstream.requests.length >= 3 && upstream.requests.every(throughProxy));
    assert.equal((await forwardedTo(forward, upstream.url)).length, upstream.requests.length);
    const redacted = `http://builder:***@127.0.0.1:${forward.port}`;
    const startup = cli.logs.find((line) => typeof line.listen === 'string');
    assert.ok(String(startup?.msg).includes(`via proxy ${redacted}`), String(startup?.msg));
    assert.deepEqual(JSON.parse(health.body.toString()).upstreamProxy, {
      source: 'flag',
      http: redacted,
      https: redacted,
    });
    await cli.stop();
    const help = await helpWithProxyEnv(forward.urlWithCredentials);
    assert.match(help, /--upstream-proxy <url>/);
    for (const [what, text] of [
      ['log lines', JSON.stringify(cli.logs)],
      ['stderr', cli.stderr()],
      ['/health', health.body.toString()],
      ['--help', help],
    ] as const) {
      assert.ok(!text.includes('hunter2-secret'), `the password shows in ${what}`);
    }
  });

  test('the git mirror clones an http upstream through the proxy, with credentials', async (t) => {
    if (!(await toolsAvailable(t, 'git'))) return;
    const forward = await startForwardProxy(t, {
      basicAuth: { user: 'mirror', password: 'git-secret' },
    });
    const upstream = await fakeUpstream(t);
    const dir = await makeTempDir('proxy-git');
    t.after(() => removeTempDir(dir));
    await upstream.enableGit(dir);
    const gitServer = await startGitHttpServer(t, dir);
    const proxy = await startProxy({
      upstream,
      gitUrl: `${gitServer.url}/upstream.git`,
      settings: {
        sparseUpstream: undefined,
        proxyEnv: { HTTP_PROXY: forward.urlWithCredentials },
      },
    });
    t.after(() => proxy.close());
    const git = proxy.deps.git;
    assert.ok(git);

    await waitFor(() => git.ready || git.status().lastError !== undefined, 20_000, 'the clone');
    assert.equal(git.status().lastError, undefined);
    assert.equal((await httpGet(`${proxy.url}${INDEX_FILE}`)).status, 200);

    assert.ok(gitServer.requests.length >= 2, 'refs and a pack were fetched');
    for (const request of gitServer.requests) {
      assert.match(String(request.headers.via), /tinyproxy/, `${request.path} came directly`);
    }
    const logged = await forwardedTo(forward, gitServer.url);
    assert.ok(
      logged.includes(`GET ${gitServer.url}/upstream.git/info/refs?service=git-upload-pack`),
    );
    assert.ok(logged.includes(`POST ${gitServer.url}/upstream.git/git-upload-pack`));
    assert.ok(!JSON.stringify(git.status()).includes('git-secret'));
  });
});

describe('outbound proxy and private CA together', () => {
  test('the git mirror fetches an https upstream through a CONNECT tunnel, trusting the CA', async (t) => {
    if (!(await toolsAvailable(t, 'git', 'openssl'))) return;
    const dir = await makeTempDir('proxy-git-https');
    t.after(() => removeTempDir(dir));
    const certs = await makeTestCertificates(dir);
    const tls = { cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) };
    const upstream = await fakeUpstream(t);
    await upstream.enableGit(join(dir, 'git'));
    const gitServer = await startGitHttpServer(t, join(dir, 'git'), tls);
    const forward = await startForwardProxy(t, { connectPorts: [gitServer.port] });
    const proxy = await startProxy({
      upstream,
      gitUrl: `${gitServer.url}/upstream.git`,
      settings: {
        sparseUpstream: undefined,
        proxyEnv: { HTTPS_PROXY: forward.url },
        upstreamCa: certs.caFile,
      },
    });
    t.after(() => proxy.close());
    const git = proxy.deps.git;
    assert.ok(git);

    await waitFor(() => git.ready || git.status().lastError !== undefined, 20_000, 'the clone');
    assert.equal(git.status().lastError, undefined);
    assert.ok(gitServer.requests.length >= 2, 'refs and a pack were fetched');
    const logged = await forward.requests();
    assert.deepEqual([...new Set(logged)], [`CONNECT 127.0.0.1:${gitServer.port}`]);
  });
});

/** `cargo-cacher --help` with a proxy password in the environment, as an operator would run it. */
async function helpWithProxyEnv(proxyUrl: string): Promise<string> {
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--help'], {
    env: { ...process.env, HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result = await finished(child);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout + result.stderr;
}
