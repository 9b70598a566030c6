import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { connect as connectHttp2, constants } from 'node:http2';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { ClientLimits, ConfigSettings } from '../../src/config.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { parseExposition, sampleValue } from '../helpers/prometheus.ts';
import { startProxy, startUpstreamAndProxy } from '../helpers/proxy.ts';
import { openRaw, type RawConnectOptions, receive, settlesWithin } from '../helpers/raw-client.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { makeTestCertificates } from '../helpers/tls-certs.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOKEN = 'limits-token-3c2b1a';
const CRATES = [{ name: 'fake-a', version: '0.1.0' }];

async function proxyWith(
  t: TestContext,
  limits: Partial<ClientLimits>,
  extra: { tokens?: boolean; tls?: boolean } = {},
) {
  const dir = await makeTempDir('limits');
  t.after(() => removeTempDir(dir));
  const settings: ConfigSettings = { clientLimits: limits };
  if (extra.tokens) {
    settings.authTokenFile = join(dir, 'tokens');
    await writeFile(settings.authTokenFile, `${TOKEN} admin\n`);
  }
  if (extra.tls) {
    const certs = await makeTestCertificates(dir);
    settings.tls = { certFile: certs.certFile, keyFile: certs.keyFile };
  }
  return startUpstreamAndProxy(t, { upstream: { crates: CRATES }, settings });
}

async function closedCount(url: string, reason: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: TOKEN } });
  const families = parseExposition(await response.text());
  return sampleValue(families, 'cargo_cacher_client_connections_closed_total', { reason }) ?? 0;
}

/** Opens a raw connection that the test destroys when it ends, whatever happened. */
async function openFor(t: TestContext, url: string, options?: RawConnectOptions) {
  const conn = await openRaw(url, options);
  t.after(() => conn.socket.destroy());
  return conn;
}

const SLOW_POST =
  'POST /api/v1/prefetch HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n' +
  'Content-Length: 1000000\r\n\r\nf';

describe('client connections: refusals end the request', () => {
  test('a 401 to a slow body is answered at once and the connection is closed', async (t) => {
    const { proxy } = await proxyWith(t, {}, { tokens: true });
    const conn = await openFor(t, proxy.url, { localAddress: '127.0.0.2' });
    conn.socket.write(SLOW_POST);
    // The body never finishes: only the server can end this connection.
    assert.ok(await settlesWithin(conn.closed, 5_000), 'the server closed the connection');
    assert.match(conn.received(), /^HTTP\/1\.1 401 /);
    assert.match(conn.received(), /\r\nconnection: close\r\n/i);
  });

  test('over HTTP/2 a refused upload is answered and its stream reset with NO_ERROR', async (t) => {
    const { proxy } = await proxyWith(t, {}, { tokens: true, tls: true });
    const session = connectHttp2(proxy.url, { rejectUnauthorized: false });
    t.after(() => session.close());
    const stream = session.request({
      ':method': 'POST',
      ':path': '/api/v1/prefetch',
      'content-type': 'text/plain',
      'content-length': '1000000',
    });
    stream.write('f');
    const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
    assert.equal(headers[':status'], 401);
    stream.resume();
    assert.ok(await settlesWithin(once(stream, 'close'), 5_000), 'the stream was closed');
    assert.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR);
  });

  test('a request with two Host headers is answered 400, on the fast path too', async (t) => {
    const { proxy } = await proxyWith(t, {});
    // Served once so the index file is hot, and the fast path would answer it.
    assert.equal((await httpGet(`${proxy.url}/index/fa/ke/fake-a`)).status, 200);
    for (const path of ['/index/fa/ke/fake-a', '/health']) {
      const conn = await openFor(t, proxy.url);
      conn.socket.write(`GET ${path} HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n`);
      assert.ok(await settlesWithin(conn.closed, 5_000), 'closed after the 400');
      assert.match(conn.received(), /^HTTP\/1\.1 400 /, path);
      assert.match(conn.received(), /more than one Host header/);
    }
  });
});

describe('client connections: deadlines', () => {
  test('headers that do not arrive within the header timeout close the connection', async (t) => {
    const { proxy } = await proxyWith(t, { headersTimeoutMs: 500 });
    const conn = await openFor(t, proxy.url);
    conn.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    assert.ok(await settlesWithin(conn.closed, 4_000), 'closed within the header timeout');
    assert.ok((await conn.closed) >= 400, 'not before the timeout');
  });

  test('an authorised body that trickles is cut off at the request timeout', async (t) => {
    const { proxy } = await proxyWith(
      t,
      { headersTimeoutMs: 500, requestTimeoutMs: 1_000 },
      { tokens: true },
    );
    const conn = await openFor(t, proxy.url);
    conn.socket.write(SLOW_POST.replace('Host: x\r\n', `Host: x\r\nAuthorization: ${TOKEN}\r\n`));
    const drip = setInterval(() => conn.socket.write('o'), 200);
    t.after(() => clearInterval(drip));
    assert.ok(await settlesWithin(conn.closed, 5_000), 'closed at the request timeout');
    assert.ok((await conn.closed) >= 900, 'not before the timeout');
  });

  for (const tls of [false, true]) {
    test(`an idle keep-alive HTTP/1.1 connection is closed (${tls ? 'TLS' : 'plain'})`, async (t) => {
      const { proxy } = await proxyWith(t, { idleTimeoutMs: 500 }, { tls });
      const conn = await openFor(t, proxy.url, tls ? { tls: { alpn: ['http/1.1'] } } : {});
      conn.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      await receive(conn, /"status"/);
      assert.match(conn.received(), /keep-alive/i, 'the answer kept the connection open');
      assert.ok(await settlesWithin(conn.closed, 4_000), 'the idle connection was closed');
    });
  }

  test('a response the client stops reading is aborted after the send timeout', async (t) => {
    const upstream = await startFakeUpstream({
      crates: [{ name: 'fake-big', version: '1.0.0', padBytes: 24_000_000 }],
    });
    t.after(() => upstream.close());
    const proxy = await startProxy({
      upstream,
      settings: { clientLimits: { sendTimeoutMs: 1_000 } },
    });
    t.after(() => proxy.close());
    const path = '/api/v1/crates/fake-big/1.0.0/download';
    // Stored first (a miss would be prepared upstream, which is never cut), and too large to be
    // held in memory: it streams from storage, so the server has bytes waiting for the reader.
    assert.equal((await httpGet(`${proxy.url}${path}`)).status, 200);
    const conn = await openFor(t, proxy.url);
    conn.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    conn.socket.pause();
    // A paused socket does not see the close; the server's count does.
    await waitFor(
      () => proxy.instance.connections.counts().events.send_timeout === 1,
      6_000,
      'the send timeout to close the stalled reader',
    );
    conn.socket.resume();
    assert.ok(await settlesWithin(conn.closed, 2_000), 'the connection was closed');
    assert.ok(conn.received().length < 24_000_000, 'the body was cut short');
  });

  test('an idle HTTP/2 session with no open stream is closed', async (t) => {
    const { proxy } = await proxyWith(t, { idleTimeoutMs: 500 }, { tls: true });
    const session = connectHttp2(proxy.url, { rejectUnauthorized: false });
    t.after(() => session.destroy());
    const stream = session.request({ ':path': '/health' });
    stream.resume();
    await once(stream, 'end');
    assert.ok(await settlesWithin(once(session, 'close'), 4_000), 'the session was closed');
    assert.equal(proxy.instance.connections.counts().events.idle_timeout, 1);
  });

  test('over HTTP/2 an authorised body that trickles is reset at the request timeout', async (t) => {
    const { proxy } = await proxyWith(
      t,
      { headersTimeoutMs: 500, requestTimeoutMs: 1_000 },
      { tokens: true, tls: true },
    );
    const session = connectHttp2(proxy.url, { rejectUnauthorized: false });
    t.after(() => session.destroy());
    const stream = session.request({
      ':method': 'POST',
      ':path': '/api/v1/prefetch',
      authorization: TOKEN,
      'content-type': 'text/plain',
      'content-length': '1000000',
    });
    stream.on('error', () => undefined);
    stream.write('f');
    const drip = setInterval(() => stream.write('o'), 200);
    t.after(() => clearInterval(drip));
    assert.ok(await settlesWithin(once(stream, 'close'), 5_000), 'the stream was reset');
    assert.equal(stream.rstCode, constants.NGHTTP2_CANCEL);
    assert.equal(proxy.instance.connections.counts().events.body_timeout, 1);
    assert.equal(session.closed || session.destroyed, false, 'the session itself lives on');
  });

  test('over HTTP/2 a stream the client stops reading is reset after the send timeout', async (t) => {
    const upstream = await startFakeUpstream({
      crates: [{ name: 'fake-big', version: '1.0.0', padBytes: 24_000_000 }],
    });
    t.after(() => upstream.close());
    const dir = await makeTempDir('limits-h2');
    t.after(() => removeTempDir(dir));
    const certs = await makeTestCertificates(dir);
    const proxy = await startProxy({
      upstream,
      settings: {
        clientLimits: { sendTimeoutMs: 1_000 },
        tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      },
    });
    t.after(() => proxy.close());
    const path = '/api/v1/crates/fake-big/1.0.0/download';
    const session = connectHttp2(proxy.url, { rejectUnauthorized: false });
    t.after(() => session.destroy());
    // Stored first, over its own stream: the crate is then streamed from storage.
    const first = session.request({ ':path': path });
    first.resume();
    await once(first, 'end');
    const stalled = session.request({ ':path': path });
    stalled.on('error', () => undefined);
    const reset = once(stalled, 'close');
    // Never read: the client's flow-control window stops the server after 64 KB.
    stalled.pause();
    await waitFor(
      () => proxy.instance.connections.counts().events.send_timeout === 1,
      6_000,
      'the send timeout to reset the stalled stream',
    );
    assert.ok(await settlesWithin(reset, 2_000), 'the stream was reset');
    assert.equal(stalled.rstCode, constants.NGHTTP2_CANCEL);
  });
});

describe('client connections: caps', () => {
  test('past the per-address cap new connections from that address are refused, others served', async (t) => {
    const { proxy } = await proxyWith(t, { maxConnectionsPerIp: 5 });
    const held = [];
    for (let i = 0; i < 5; i++)
      held.push(await openFor(t, proxy.url, { localAddress: '127.0.0.2' }));
    const extra = await openFor(t, proxy.url, { localAddress: '127.0.0.2' });
    assert.ok(await settlesWithin(extra.closed, 2_000), 'the sixth connection was refused');
    assert.equal(extra.received(), '');
    assert.equal((await httpGet(`${proxy.url}/health`)).status, 200, '127.0.0.1 is served');
    for (const conn of held) assert.equal(conn.socket.destroyed, false, 'the five stay open');
    assert.equal(await closedCount(proxy.url, 'refused_per_ip'), 1);
    for (const conn of held) conn.socket.destroy();
  });

  test('at the total cap a lighter client gets in by closing the heaviest one’s oldest', async (t) => {
    const { proxy } = await proxyWith(t, { maxConnections: 6, maxConnectionsPerIp: 100 });
    const heavy = [];
    for (let i = 0; i < 6; i++)
      heavy.push(await openFor(t, proxy.url, { localAddress: '127.0.0.2' }));
    // Each connection is counted when accepted: wait until the server has seen all six.
    await waitFor(
      () => proxy.instance.connections.counts().open === 6,
      2_000,
      'six open connections',
    );
    const seventh = await openFor(t, proxy.url, { localAddress: '127.0.0.2' });
    assert.ok(await settlesWithin(seventh.closed, 2_000), 'the heavy client gets no seventh');
    assert.equal((await httpGet(`${proxy.url}/health`)).status, 200, 'a new client is served');
    assert.ok(await settlesWithin(heavy[0]?.closed ?? Promise.reject(), 2_000), 'oldest closed');
    assert.equal(heavy[5]?.socket.destroyed, false, 'the newest of the heavy client stays');
    const { events } = proxy.instance.connections.counts();
    assert.equal(events.evicted, 1);
    assert.equal(events.refused_total, 1);
    for (const conn of heavy) conn.socket.destroy();
  });
});

describe('/health and X-Cache-Status', () => {
  test('without a token /health shows only the status; with one, the details', async (t) => {
    const { proxy } = await proxyWith(t, {}, { tokens: true });
    const bare = await httpGet(`${proxy.url}/health`);
    assert.equal(bare.status, 200);
    assert.deepEqual(JSON.parse(bare.body.toString()), { status: 'ok' });
    const full = JSON.parse(
      (await httpGet(`${proxy.url}/health`, { authorization: TOKEN })).body.toString(),
    );
    assert.equal(full.status, 'ok');
    assert.equal(full.storage, proxy.storageDir);
    assert.equal(full.storageWritable, true);
  });

  test('index and crate errors carry X-Cache-Status too', async (t) => {
    const { proxy } = await proxyWith(t, {});
    const index = await httpGet(`${proxy.url}/index/no/ne/nonexistent`);
    assert.equal(index.status, 404);
    assert.equal(index.headers['x-cache-status'], 'NOT_FOUND');
    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-a/9.9.9/download`);
    assert.equal(crate.status, 404);
    assert.equal(crate.headers['x-cache-status'], 'NOT_FOUND');
  });
});
