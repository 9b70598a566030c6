import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ConfigSettings } from '../../src/config.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet, type RawResponse } from '../helpers/http-get.ts';
import {
  type LogLine,
  type RunningProxy,
  startProxy,
  startUpstreamAndProxy,
} from '../helpers/proxy.ts';

const FAKE_A = '/index/fa/ke/fake-a';
const FAST = { retryDelayMs: 20, breakerFailures: 100 };
/** A cool-down no test could sleep through: the breaker tests move the instance's clock. */
const COOL_DOWN_MS = 3_600_000;

function setup(t: TestContext, settings: ConfigSettings = {}, now?: () => number) {
  return startUpstreamAndProxy(t, {
    ...(now && { now }),
    upstream: {
      crates: [
        { name: 'fake-a', version: '0.1.0' },
        { name: 'fake-b', version: '0.2.0' },
      ],
    },
    captureLogs: true,
    settings: { ...settings, resilience: { ...FAST, ...settings.resilience } },
  });
}

function crateUrl(proxy: RunningProxy, name = 'fake-a', version = '0.1.0'): string {
  return `${proxy.url}/api/v1/crates/${name}/${version}/download`;
}

function detail(response: RawResponse): string {
  const body = JSON.parse(response.body.toString()) as { errors: { detail: string }[] };
  return body.errors[0]?.detail ?? '';
}

/** The one warn-or-worse line about a failed request, as an operator would read it. */
function failureLine(logs: LogLine[], code: string): LogLine {
  const line = logs.find((entry) => entry.code === code && entry.level !== 'info');
  assert.ok(line, `a log line with code ${code}: ${JSON.stringify(logs)}`);
  assert.doesNotMatch(line.msg, /\n/);
  return line;
}

describe('upstream faults: nothing cached', () => {
  test('connection refused: 503 that says so, retried, and one log line', async (t) => {
    const { upstream, proxy } = await setup(t);
    await upstream.stop();
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 503);
    assert.ok(response.headers['retry-after']);
    assert.match(detail(response), /connection refused/);
    assert.match(failureLine(proxy.logs, 'CARGO_CACHER_UPSTREAM_UNREACHABLE').msg, /refused/);
    const tries = proxy.logs.filter((line) => line.msg.startsWith('upstream try failed'));
    assert.equal(tries.length, 3, 'three attempts');
  });

  test('DNS failure (.invalid never resolves, nothing leaves the machine): 503', async (t) => {
    const proxy = await startProxy({
      captureLogs: true,
      settings: { sparseUpstream: 'http://upstream.invalid/index/', resilience: FAST },
    });
    t.after(() => proxy.close());
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 503);
    assert.match(detail(response), /upstream\.invalid unreachable: host name does not resolve/);
    failureLine(proxy.logs, 'CARGO_CACHER_UPSTREAM_UNREACHABLE');
  });

  test('connect timeout: 504 naming --upstream-connect-timeout', async (t) => {
    const port = await startUnresponsiveListener(t);
    const proxy = await startProxy({
      captureLogs: true,
      settings: {
        sparseUpstream: `http://127.0.0.1:${port}/index/`,
        timeouts: { connectMs: 300, headersMs: 5000, bodyMs: 5000 },
        resilience: { ...FAST, attempts: 1 },
      },
    });
    t.after(() => proxy.close());
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 504);
    assert.match(detail(response), /did not connect within 0.3s \(--upstream-connect-timeout\)/);
    failureLine(proxy.logs, 'CARGO_CACHER_UPSTREAM_TIMEOUT');
  });

  test('header timeout: 504 naming --upstream-timeout', async (t) => {
    const { upstream, proxy } = await setup(t, {
      timeouts: { connectMs: 1000, headersMs: 200, bodyMs: 5000 },
    });
    upstream.setFault({ kind: 'slow', delayMs: 3000 }, 'index');
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 504);
    assert.match(detail(response), /did not answer within 0.2s \(--upstream-timeout\)/);
  });

  test('body timeout: 504 naming --upstream-body-timeout, and nothing stored', async (t) => {
    const { upstream, proxy } = await setup(t, {
      timeouts: { connectMs: 1000, headersMs: 1000, bodyMs: 200 },
      resilience: { attempts: 1 },
    });
    await httpGet(`${proxy.url}${FAKE_A}`);
    // Half the body, and a gate that is never opened.
    upstream.setFault({ kind: 'gate', gate: new Gate() }, 'crate');
    const response = await httpGet(crateUrl(proxy));
    assert.equal(response.status, 504);
    assert.match(detail(response), /--upstream-body-timeout/);
    assert.equal(await proxy.deps.crates.has({ name: 'fake-a', version: '0.1.0' }), false);
  });

  test('a connection reset before the answer is retried', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'reset' }, '/index/fa/ke/fake-a', 2);
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 200);
    assert.equal(upstream.count(FAKE_A), 3);
    assert.equal(proxy.logs.filter((line) => /try failed/.test(line.msg)).length, 2);
  });

  test('5xx once is retried and the client never sees it', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'status', status: 502 }, 'index', 1);
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 200);
    assert.equal(upstream.count(FAKE_A), 2);
  });

  test('5xx every time: 502 with the upstream status, after 3 tries', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'status', status: 500 }, 'index');
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 502);
    assert.match(detail(response), /answered 500/);
    assert.equal(upstream.count(FAKE_A), 3);
    failureLine(proxy.logs, 'CARGO_CACHER_UPSTREAM_STATUS');
  });

  test('429 with a short Retry-After is waited for, then retried', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'status', status: 429, retryAfter: 1 }, 'index', 1);
    const started = Date.now();
    const response = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(response.status, 200);
    assert.ok(Date.now() - started >= 950, `waited ${Date.now() - started} ms`);
  });

  test('429 with a long Retry-After is passed on to cargo at once', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'status', status: 429, retryAfter: 120 }, 'crate');
    await httpGet(`${proxy.url}${FAKE_A}`);
    const started = Date.now();
    const response = await httpGet(crateUrl(proxy));
    assert.equal(response.status, 502);
    assert.equal(response.headers['retry-after'], '120');
    assert.ok(Date.now() - started < 1000);
    assert.equal(upstream.count('/dl/'), 1);
  });

  test('a truncated crate is retried, and only the whole verified one is stored', async (t) => {
    const { upstream, proxy } = await setup(t);
    upstream.setFault({ kind: 'truncated' }, 'crate', 1);
    const response = await httpGet(crateUrl(proxy));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, upstream.crate('fake-a', '0.1.0').bytes);
    assert.equal(upstream.count('/dl/'), 2);
  });

  for (const chunked of [false, true]) {
    test(`a body over --max-crate-size is refused (${chunked ? 'chunked' : 'with length'})`, async (t) => {
      const { upstream, proxy } = await setup(t, { maxCrateBytes: 1024 * 1024 });
      upstream.setFault({ kind: 'huge', bytes: 64 * 1024 * 1024, chunked }, 'crate');
      const response = await httpGet(crateUrl(proxy));
      assert.equal(response.status, 502);
      assert.match(detail(response), /--max-crate-size/);
      assert.equal(await proxy.deps.crates.has({ name: 'fake-a', version: '0.1.0' }), false);
      failureLine(proxy.logs, 'CARGO_CACHER_UPSTREAM_INVALID');
    });
  }
});

describe('upstream faults: malformed data', () => {
  test('a malformed config.json: downloads fail with 502 that names it; index files flow', async (t) => {
    const upstream = await startFakeUpstream({
      crates: [{ name: 'fake-a', version: '0.1.0' }],
      configOverride: '{"dl": 42',
    });
    t.after(() => upstream.close());
    const proxy = await startProxy({ upstream, captureLogs: true });
    t.after(() => proxy.close());
    assert.equal((await httpGet(`${proxy.url}${FAKE_A}`)).status, 200);
    const response = await httpGet(crateUrl(proxy));
    assert.equal(response.status, 502);
    assert.match(detail(response), /upstream config.json is malformed/);
    assert.equal((await httpGet(`${proxy.url}/index/config.json`)).status, 502);
  });

  test('malformed index lines are served byte for byte; good lines still download', async (t) => {
    const { upstream, proxy } = await setup(t);
    const good = upstream.crate('fake-a', '0.1.0').indexLine;
    const body = `{"name":"fake-a","vers":"0.0.9",\nnot json at all\n${good}\n\u0000\n`;
    upstream.setRawIndexFile('fa/ke/fake-a', body);
    const index = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(index.status, 200);
    assert.equal(index.body.toString(), body);
    assert.equal((await httpGet(crateUrl(proxy))).status, 200);
    assert.equal((await httpGet(crateUrl(proxy, 'fake-a', '0.0.9'))).status, 404);
  });
});

describe('upstream faults: circuit breaker and stale content', () => {
  test('opens after repeated failures: misses fail fast, hits stay fast, upstream is left alone', async (t) => {
    const clock = { ms: Date.now() };
    const { upstream, proxy } = await setup(
      t,
      {
        indexTtlMs: 0,
        resilience: { attempts: 1, breakerFailures: 3, breakerCoolDownMs: COOL_DOWN_MS },
      },
      () => clock.ms,
    );
    assert.equal((await httpGet(crateUrl(proxy))).status, 200);
    upstream.setFault({ kind: 'status', status: 503 });
    for (let i = 0; i < 3; i++) await httpGet(crateUrl(proxy, 'fake-b', '0.2.0'));
    assert.ok(proxy.logs.some((line) => /circuit open, failing fast/.test(line.msg)));
    upstream.resetLog();

    const started = performance.now();
    for (let i = 0; i < 50; i++) {
      const hit = await httpGet(crateUrl(proxy));
      assert.equal(hit.status, 200);
      assert.equal(hit.headers['x-cache-status'], 'HIT');
    }
    const perHit = (performance.now() - started) / 50;
    assert.ok(perHit < 20, `a hit took ${perHit.toFixed(1)} ms on average`);
    const stale = await httpGet(`${proxy.url}${FAKE_A}`);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.ok(stale.headers['x-cargo-cacher-stale']);
    const miss = await httpGet(crateUrl(proxy, 'fake-b', '0.2.0'));
    assert.equal(miss.status, 503);
    assert.match(detail(miss), /not asking it again/);
    assert.equal(upstream.requests.length, 0, 'no request reached upstream while open');
    const health = JSON.parse((await httpGet(`${proxy.url}/health`)).body.toString());
    assert.equal(health.upstreams[0].state, 'open');
    assert.equal(health.status, 'degraded');

    upstream.setFault(undefined);
    clock.ms += COOL_DOWN_MS - 1;
    assert.match(detail(await httpGet(crateUrl(proxy, 'fake-b', '0.2.0'))), /not asking it again/);
    assert.equal(upstream.requests.length, 0, 'still open until the cool-down is over');
    clock.ms += 1;
    assert.equal((await httpGet(crateUrl(proxy, 'fake-b', '0.2.0'))).status, 200);
    assert.ok(proxy.logs.some((line) => /circuit closed/.test(line.msg)));
  });

  test('a failed probe keeps the circuit open for another cool-down', async (t) => {
    const clock = { ms: Date.now() };
    const { upstream, proxy } = await setup(
      t,
      { resilience: { attempts: 1, breakerFailures: 1, breakerCoolDownMs: COOL_DOWN_MS } },
      () => clock.ms,
    );
    await upstream.stop();
    await httpGet(`${proxy.url}${FAKE_A}`);
    clock.ms += COOL_DOWN_MS;
    assert.equal((await httpGet(`${proxy.url}${FAKE_A}`)).status, 503);
    assert.ok(proxy.logs.some((line) => /probe failed/.test(line.msg)));
    await upstream.restart();
    clock.ms += COOL_DOWN_MS - 1;
    assert.match(detail(await httpGet(`${proxy.url}${FAKE_A}`)), /not asking it again/);
    clock.ms += 1;
    assert.equal((await httpGet(`${proxy.url}${FAKE_A}`)).status, 200);
  });
});

/**
 * A port whose listener accepts nothing: a child process listens with a backlog of 1 and blocks
 * its event loop right after telling its port (a write to a pipe is synchronous on Linux), and
 * two connections fill the accept queue, so further SYNs are dropped and a connect times out,
 * all on loopback.
 */
async function startUnresponsiveListener(t: TestContext): Promise<number> {
  const script = `const s = require('node:net').createServer();
s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(String(s.address().port) + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve) => {
    child.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
  });
  const fillers: Socket[] = [];
  t.after(() => {
    for (const socket of fillers) socket.destroy();
  });
  // A backlog of 1 queues two connections; the others wait for a SYN-ACK that never comes.
  const queueFull = new Promise<void>((resolve) => {
    let connected = 0;
    for (let i = 0; i < 4; i++) {
      const socket = connect(port, '127.0.0.1').on('error', () => {});
      socket.once('connect', () => {
        connected += 1;
        if (connected === 2) resolve();
      });
      fillers.push(socket);
    }
  });
  await queueFull;
  return port;
}
