/**
 * Live reload (SIGHUP) of a real `cargo-cacher` process: tokens change while a download started
 * with the old token is under way and completes; a bad config file keeps every previous setting;
 * a renewed certificate is served after the reload, with no restart.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { connect } from 'node:tls';
import { type CliProcess, startCli } from '../helpers/cli-process.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { hasOpenssl, makeTestCertificates } from '../helpers/tls-certs.ts';
import { waitFor } from '../helpers/wait-for.ts';

type LogLine = CliProcess['logs'][number];

/** Sends SIGHUP and resolves with the log line that ends the reload (done or failed). */
async function reload(cli: CliProcess): Promise<LogLine> {
  const seen = cli.logs.length;
  cli.child.kill('SIGHUP');
  let end: LogLine | undefined;
  await waitFor(
    () => {
      end = cli.logs.slice(seen).find((line) => /^reload (done|failed)/.test(line.msg));
      return end !== undefined;
    },
    30_000,
    'the reload to end',
  );
  return end as LogLine;
}

function logsSince(cli: CliProcess, from: number): LogLine[] {
  return cli.logs.slice(from);
}

async function setup(t: TestContext) {
  const dir = await makeTempDir('reload');
  t.after(() => removeTempDir(dir));
  const upstream = await startFakeUpstream({
    crates: [{ name: 'reload-a', version: '1.0.0', padBytes: 64 * 1024 }],
  });
  t.after(() => upstream.close());
  const tokens = join(dir, 'tokens');
  await writeFile(tokens, 'token-old read\n');
  const config = join(dir, 'config.toml');
  const settings = (extra: string) =>
    [
      '[storage]',
      `index = "${join(dir, 'store')}"`,
      '[upstream]',
      `sparse = "${upstream.indexUrl}"`,
      '[git]',
      'no-git = true',
      '[auth]',
      `auth-token-file = "${tokens}"`,
      extra,
    ].join('\n');
  await writeFile(config, settings('[index]\nindex-ttl = "60s"\n'));
  const cli = await startCli(['--config', config]);
  t.after(() => cli.kill9());
  return { dir, upstream, tokens, config, settings, cli };
}

const as = (token: string) => ({ authorization: token });

describe('SIGHUP reload', () => {
  test('a new token works and a removed one stops, while a download started before completes', async (t) => {
    const { upstream, tokens, config, settings, cli } = await setup(t);
    const crate = `${cli.url}/api/v1/crates/reload-a/1.0.0/download`;
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-old'))).status, 200);

    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    const download = httpGet(crate, as('token-old'));
    await gate.arrived();

    await writeFile(tokens, 'token-new read\n');
    await writeFile(
      config,
      settings('[index]\nindex-ttl = "5m"\n[mirror]\nthreads = 4\n[log]\ndebug = 2\n'),
    );
    const from = cli.logs.length;
    const done = await reload(cli);
    assert.match(done.msg, /^reload done: (indexTtlMs, logLevel|logLevel, indexTtlMs) changed$/);
    assert.deepEqual(done.changes, {
      indexTtlMs: { from: '1m', to: '5m' },
      logLevel: { from: 'warn', to: 'debug' },
    });
    // Settings derived from index-ttl elsewhere (rustup's TTL) may be reported too.
    assert.ok((done.restartNeeded as string[]).includes('threads'));
    assert.ok(!(done.restartNeeded as string[]).includes('indexTtlMs'));
    assert.ok(
      logsSince(cli, from).some(
        (line) =>
          line.level === 'warn' &&
          line.msg === 'reload: threads changed; it takes effect after a restart',
      ),
    );

    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-new'))).status, 200);
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-old'))).status, 401);
    assert.equal((await httpGet(`${cli.url}/index/config.json`)).status, 401);
    // The log level too: requests are logged at debug now.
    await waitFor(
      () => logsSince(cli, from).some((line) => line.level === 'debug'),
      30_000,
      'a debug line',
    );

    // The download admitted with the old token was held upstream all along: it completes.
    gate.open();
    const response = await download;
    assert.equal(response.status, 200);
    assert.equal(response.complete, true);
    const published = upstream.crate('reload-a', '1.0.0');
    assert.equal(createHash('sha256').update(response.body).digest('hex'), published.checksum);
  });

  test('a bad config file keeps every previous setting, tokens included, and says why', async (t) => {
    const { tokens, config, settings, cli } = await setup(t);
    await writeFile(tokens, 'token-next read\n');
    await writeFile(config, settings('[index]\nindex-ttl = "5m"\nindex-tll = "6m"\n'));
    const failed = await reload(cli);
    assert.equal(failed.level, 'error');
    assert.equal(
      failed.msg,
      `reload failed: ${config}:11: unknown key "index-tll" in [index] (did you mean "index-ttl" in [index]?); ` +
        'the previous settings stay in force',
    );
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-old'))).status, 200);
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-next'))).status, 401);

    // A bad token file is refused the same way, and the process keeps serving.
    await writeFile(config, settings('[index]\nindex-ttl = "5m"\n'));
    await writeFile(tokens, 'token-next reader\n');
    const badTokens = await reload(cli);
    assert.match(
      badTokens.msg,
      /^reload failed: .*tokens line 1: expected "<token> read" or "<token> admin"; the previous settings stay in force$/,
    );
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-old'))).status, 200);

    // Fixed: both apply.
    await writeFile(tokens, 'token-next read\n');
    const done = await reload(cli);
    assert.equal(done.msg, 'reload done: indexTtlMs changed');
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-next'))).status, 200);
    assert.equal((await httpGet(`${cli.url}/index/config.json`, as('token-old'))).status, 401);
  });
});

/** The certificate a TLS server presents, as its sha256 fingerprint, and the ALPN it chose. */
function presented(port: number): Promise<{ fingerprint: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] },
      () => {
        const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
        const alpn = socket.alpnProtocol;
        socket.end();
        resolve({ fingerprint, alpn: alpn ?? false });
      },
    );
    socket.once('error', reject);
  });
}

async function fingerprintOf(file: string): Promise<string> {
  return new X509Certificate(await readFile(file)).fingerprint256;
}

describe('SIGHUP reload of TLS files', () => {
  test('a renewed certificate is served to new connections after the reload; a bad one is not', async (t) => {
    assert.ok(await hasOpenssl(), 'openssl makes the test certificates');
    const dir = await makeTempDir('reload-tls');
    t.after(() => removeTempDir(dir));
    const [firstDir, renewedDir] = [join(dir, 'first'), join(dir, 'renewed')];
    await Promise.all([mkdir(firstDir), mkdir(renewedDir)]);
    const [first, renewed] = await Promise.all([
      makeTestCertificates(firstDir),
      makeTestCertificates(renewedDir),
    ]);
    const cert = join(dir, 'server.pem');
    const key = join(dir, 'server.key');
    await copyFile(first.certFile, cert);
    await copyFile(first.keyFile, key);
    const cli = await startCli([
      '--config',
      'none',
      '-i',
      join(dir, 'store'),
      '--no-git',
      '--offline',
      '--tls-cert',
      cert,
      '--tls-key',
      key,
    ]);
    t.after(() => cli.kill9());
    const port = Number(new URL(cli.url).port);
    assert.deepEqual(await presented(port), {
      fingerprint: await fingerprintOf(first.certFile),
      alpn: 'h2',
    });

    await copyFile(renewed.certFile, cert);
    await copyFile(renewed.keyFile, key);
    const done = await reload(cli);
    assert.equal(done.msg, 'reload done: no setting changed (files read again)');
    assert.ok(cli.logs.some((line) => line.msg === 'TLS certificate reloaded'));
    assert.deepEqual(await presented(port), {
      fingerprint: await fingerprintOf(renewed.certFile),
      alpn: 'h2',
    });

    // A key that does not match the certificate: the renewed one stays.
    await copyFile(first.keyFile, key);
    const failed = await reload(cli);
    assert.match(
      failed.msg,
      /^reload failed: --tls-cert .* and --tls-key .* are not a usable certificate and key/,
    );
    assert.equal((await presented(port)).fingerprint, await fingerprintOf(renewed.certFile));
  });
});
