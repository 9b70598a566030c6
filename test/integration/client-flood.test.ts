/**
 * One client must not lock everyone out. The real CLI runs as a child process (under
 * `prlimit --nofile=512` where the test says so); an attacker binds 127.0.0.2 and a
 * well-behaved cargo-like client uses 127.0.0.1. Each attack is bounded in time and stops by
 * itself; every socket is destroyed when the test ends.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type CliProcess, startCli } from '../helpers/cli-process.ts';
import { sha256Hex } from '../helpers/crate-pack.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { openRaw, type RawConnection } from '../helpers/raw-client.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const TOKEN = 'flood-token-7d6e5f';
const ATTACKER = '127.0.0.2';
const CRATES = [
  ...['flood-a', 'flood-b', 'flood-c', 'flood-d'].map((name) => ({ name, version: '1.0.0' })),
  // About the size of the crate in the reported slow-reader attack.
  { name: 'flood-big', version: '1.0.0', padBytes: 1_200_000 },
];

interface World {
  upstream: FakeUpstream;
  cli: CliProcess;
}

async function world(t: TestContext, args: string[], fdLimit?: number): Promise<World> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const dir = await makeTempDir('flood');
  t.after(() => removeTempDir(dir));
  const tokens = join(dir, 'tokens');
  await writeFile(tokens, `${TOKEN} admin\n`);
  const cli = await startCli(
    [
      '-i',
      join(dir, 'store'),
      '-s',
      upstream.indexUrl,
      '--no-git',
      '--auth-token-file',
      tokens,
    ].concat(args),
    fdLimit === undefined ? {} : { wrapper: ['prlimit', `--nofile=${fdLimit}:${fdLimit}`, '--'] },
  );
  t.after(() => cli.kill9());
  // Warm the cache: the downloads measured below are all hits.
  for (const { name } of CRATES) assert.equal((await download(cli, upstream, name)).ok, true);
  return { upstream, cli };
}

/** Downloads a crate with the token from 127.0.0.1; ok when 200 with upstream's exact bytes. */
async function download(cli: CliProcess, upstream: FakeUpstream, name: string) {
  const response = await httpGet(`${cli.url}/api/v1/crates/${name}/1.0.0/download`, {
    authorization: TOKEN,
  });
  const expected = upstream.crate(name, '1.0.0').checksum;
  return { ok: response.status === 200 && sha256Hex(response.body) === expected, response };
}

/** Keeps `count` attacker connections open until `stop`, reopening each one the server closes. */
function attack(
  cli: CliProcess,
  count: number,
  onOpen: (conn: RawConnection) => void,
  stop: AbortSignal,
): { opened: () => number; done: Promise<void> } {
  let opened = 0;
  const live = new Set<RawConnection>();
  const one = async () => {
    while (!stop.aborted) {
      const conn = await openRaw(cli.url, { localAddress: ATTACKER }).catch(() => undefined);
      if (conn) {
        opened += 1;
        live.add(conn);
        onOpen(conn);
        await Promise.race([conn.closed, new Promise((r) => stop.addEventListener('abort', r))]);
        live.delete(conn);
        conn.socket.destroy();
      }
      // A closed or refused connection is retried, a little later: a flood, not a busy loop.
      await delay(100);
    }
  };
  const done = Promise.all(Array.from({ length: count }, one)).then(() => {
    for (const conn of live) conn.socket.destroy();
  });
  return { opened: () => opened, done };
}

/** Downloads every crate in turn from 127.0.0.1 for `ms`; returns the failures. */
async function legitimateTraffic(world: World, ms: number): Promise<string[]> {
  const failures: string[] = [];
  const until = Date.now() + ms;
  let rounds = 0;
  while (Date.now() < until || rounds < 3) {
    rounds += 1;
    for (const { name } of CRATES) {
      const result = await download(world.cli, world.upstream, name).catch((err: Error) => ({
        ok: false,
        response: { status: err.message },
      }));
      if (!result.ok) failures.push(`${name}: ${result.response.status}`);
    }
    const health = await httpGet(`${world.cli.url}/health`).catch(() => ({ status: 0 }));
    if (health.status !== 200) failures.push(`/health: ${health.status}`);
  }
  return failures;
}

/** A `cargo_cacher_client_connections_closed_total` sample from /metrics. */
async function closedByServer(cli: CliProcess, reason: string): Promise<number> {
  const metrics = await httpGet(`${cli.url}/metrics`, { authorization: TOKEN });
  const line = new RegExp(
    `^cargo_cacher_client_connections_closed_total\\{reason="${reason}"\\} (\\d+)$`,
    'm',
  );
  return Number(line.exec(metrics.body.toString())?.[1] ?? 0);
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

describe('client floods from one address', () => {
  test('600 slow unauthenticated bodies and headers under ulimit -n 512: another address is served', async (t) => {
    const w = await world(t, [], 512);
    const stop = new AbortController();
    t.after(() => stop.abort());
    let refusals = 0;
    // Half trickle a body the 401 refuses; half trickle their headers (held until the header
    // deadline), which fills the connection caps.
    let n = 0;
    const flood = attack(
      w.cli,
      600,
      (conn) => {
        const slowHeaders = n++ % 2 === 0;
        conn.socket.write(
          slowHeaders
            ? 'POST /api/v1/prefetch HTTP/1.1\r\nHost: x\r\n'
            : 'POST /api/v1/prefetch HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n' +
                'Content-Length: 1000000\r\n\r\nf',
        );
        const drip = setInterval(() => conn.socket.write(slowHeaders ? 'X' : 'o'), 2_000);
        conn.socket.once('close', () => clearInterval(drip));
        conn.socket.once('data', (chunk: Buffer) => {
          if (chunk.toString('latin1').startsWith('HTTP/1.1 401')) refusals += 1;
        });
      },
      stop.signal,
    );
    // Let the flood build up to its full size first.
    await delay(2_000);
    const failures = await legitimateTraffic(w, 6_000);
    stop.abort();
    await flood.done;
    assert.deepEqual(failures, [], 'every authorised download and /health succeeded');
    assert.ok(flood.opened() >= 600, `the attacker opened ${flood.opened()} connections`);
    // Each of the 300 slow-body connections admitted is refused with 401 at once (fewer under
    // load, when the caps turned some away before they were read).
    assert.ok(refusals >= 100, `slow bodies were refused at once (${refusals})`);
  });

  test('300 slow readers of a 1.2 MB crate: another address is served, memory stays bounded', async (t) => {
    const w = await world(t, ['--client-send-timeout', '3s', '--client-idle-timeout', '2s']);
    const stop = new AbortController();
    t.after(() => stop.abort());
    const flood = attack(
      w.cli,
      300,
      (conn) => {
        conn.socket.write(
          `GET /api/v1/crates/flood-big/1.0.0/download HTTP/1.1\r\nHost: x\r\n` +
            `Authorization: ${TOKEN}\r\n\r\n`,
        );
        // Never read: the kernel's buffers fill and the server's writes stop.
        conn.socket.pause();
      },
      stop.signal,
    );
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssBytes(w.cli.pid));
    }, 200);
    t.after(() => clearInterval(sampler));
    await delay(2_000);
    const failures = await legitimateTraffic(w, 8_000);
    stop.abort();
    await flood.done;
    clearInterval(sampler);
    assert.deepEqual(failures, [], 'every download from 127.0.0.1 succeeded');
    // The server ended the stalled ones itself, each within its deadlines.
    const closed =
      (await closedByServer(w.cli, 'send_timeout')) + (await closedByServer(w.cli, 'idle_timeout'));
    assert.ok(closed >= 256, `${closed} slow readers were closed by the server`);
    assert.ok(peakRss < 200 * 1024 ** 2, `peak RSS ${Math.round(peakRss / 1024 ** 2)} MB`);
  });
});
