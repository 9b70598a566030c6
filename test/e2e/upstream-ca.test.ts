/**
 * `--upstream-ca`: https upstreams whose certificate comes from a private test CA. Without the
 * flag the sparse index, the crates and the git mirror fail, and the log says so in one line
 * naming the host and the flag; with it they work, for undici and for git alike.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import {
  type FakeCrateSpec,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';
import { startGitHttpServer } from '../helpers/git-http-server.ts';
import { httpGet } from '../helpers/http-get.ts';
import { startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { makeTestCertificates, type TestCertificates } from '../helpers/tls-certs.ts';
import { toolAvailable } from '../helpers/tools.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CRATES: FakeCrateSpec[] = [
  { name: 'ca-a', version: '0.1.0' },
  { name: 'ca-b', version: '0.1.0', deps: [{ name: 'ca-a', req: '0.1' }] },
];
const INDEX_FILE = '/index/ca/-a/ca-a';
const CRATE = '/api/v1/crates/ca-a/0.1.0/download';

interface World {
  dir: string;
  certs: TestCertificates;
  /** An https upstream whose certificate the test CA signed. */
  upstream: FakeUpstream;
}

async function startWorld(t: TestContext): Promise<World | undefined> {
  if (!(await toolAvailable(t, 'openssl', ['version']))) return undefined;
  const dir = await makeTempDir('upstream-ca');
  t.after(() => removeTempDir(dir));
  const certs = await makeTestCertificates(dir);
  const tls = { cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) };
  const upstream = await startFakeUpstream({ crates: CRATES, tls });
  t.after(() => upstream.close());
  return { dir, certs, upstream };
}

describe('private CA for upstreams (--upstream-ca)', () => {
  test('without it an https upstream fails with one line naming the host and the flag', async (t) => {
    const world = await startWorld(t);
    if (!world) return;
    const { upstream } = world;
    const proxy = await startProxy({ upstream, captureLogs: true });
    t.after(() => proxy.close());

    const index = await httpGet(`${proxy.url}${INDEX_FILE}`);
    assert.equal(index.status, 503);
    assert.equal(upstream.requests.length, 0, 'no request got past the TLS handshake');

    const host = new URL(upstream.url).host;
    const lines = proxy.logs.filter((line) => line.level === 'warn');
    const line = lines.find((entry) => entry.msg.includes('TLS certificate'));
    assert.ok(line, `a warning about the certificate: ${JSON.stringify(lines)}`);
    assert.ok(line.msg.includes(`upstream ${host}`), line.msg);
    assert.match(line.msg, /not trusted: .+ \([A-Z_]+\)/, 'the reason, with its code');
    assert.match(line.msg, /--upstream-ca <pem>/);
    assert.doesNotMatch(line.msg, /\n/);
  });

  test('with it, cargo resolves and fetches from the https upstream', async (t) => {
    const world = await startWorld(t);
    if (!world || !(await toolAvailable(t, 'cargo'))) return;
    const { upstream, certs } = world;
    const proxy = await startProxy({ upstream, settings: { upstreamCa: certs.caFile } });
    t.after(() => proxy.close());
    const box = await makeCargoSandbox({ registry: proxy.sparseRegistry, deps: { 'ca-b': '0.1' } });
    t.after(() => box.remove());

    await box.cargo(['generate-lockfile']);
    await box.cargo(['fetch']);

    const cached = await readdir(join(box.cargoHome, 'registry', 'cache'), { recursive: true });
    const crates = cached.filter((name) => name.endsWith('.crate')).map((n) => n.split('/').pop());
    assert.deepEqual(crates.sort(), ['ca-a-0.1.0.crate', 'ca-b-0.1.0.crate']);
    assert.equal(upstream.count('/dl/'), 2);
    assert.equal((await httpGet(`${proxy.url}${CRATE}`)).headers['x-cache-status'], 'HIT');
    const health = JSON.parse((await httpGet(`${proxy.url}/health`)).body.toString());
    assert.equal(health.upstreamCa, certs.caFile);
  });

  test('the git mirror over https fails without it, naming the flag, and clones with it', async (t) => {
    const world = await startWorld(t);
    if (!world || !(await toolAvailable(t, 'git'))) return;
    const { upstream, certs, dir } = world;
    await upstream.enableGit(join(dir, 'git'));
    const tls = { cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) };
    const gitServer = await startGitHttpServer(t, join(dir, 'git'), tls);
    const gitUrl = `${gitServer.url}/upstream.git`;
    const settings = { sparseUpstream: undefined };

    const untrusting = await startProxy({ upstream, gitUrl, settings });
    t.after(() => untrusting.close());
    const refused = untrusting.deps.git;
    assert.ok(refused);
    await waitFor(() => refused.status().lastError !== undefined, 20_000, 'the failed clone');
    const error = String(refused.status().lastError);
    assert.match(error, /certificate/i);
    assert.ok(error.includes('127.0.0.1'), error);
    assert.match(error, /--upstream-ca <pem>/);
    assert.equal(refused.ready, false);
    await untrusting.close();

    const trusting = await startProxy({
      upstream,
      gitUrl,
      settings: { ...settings, upstreamCa: certs.caFile },
    });
    t.after(() => trusting.close());
    const git = trusting.deps.git;
    assert.ok(git);
    await waitFor(() => git.ready || git.status().lastError !== undefined, 20_000, 'the clone');
    assert.equal(git.status().lastError, undefined);
    assert.equal((await httpGet(`${trusting.url}${INDEX_FILE}`)).status, 200);
    // git got a bundle of the system roots plus the test CA, under the storage root.
    const bundle = await readFile(join(trusting.storageDir, 'git', 'upstream-ca.pem'), 'utf8');
    assert.ok(bundle.includes((await readFile(certs.caFile, 'utf8')).trim()));
    assert.ok((bundle.match(/BEGIN CERTIFICATE/g) ?? []).length > 1, 'the system roots kept');
  });
});
