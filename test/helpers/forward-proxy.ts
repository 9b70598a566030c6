/**
 * @module
 * A real forward proxy for tests: Debian's `tinyproxy` on 127.0.0.1, with its own config and log
 * file in a temp dir, stopped when the test ends. Its log names every request it carried
 * (`GET http://host:port/path` when forwarding, `CONNECT host:port` when tunnelling), so a test
 * can show that an upstream was reached through it, or that it was not.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makeTempDir, removeTempDir } from './temp-dir.ts';
import { waitFor } from './wait-for.ts';

/** How to start the proxy. */
export interface ForwardProxyOptions {
  /** Require these credentials (tinyproxy `BasicAuth`). */
  basicAuth?: { user: string; password: string };
  /** Ports CONNECT may reach; default any (tinyproxy allows all ports without a ConnectPort). */
  connectPorts?: number[];
}

/** A running tinyproxy. */
export interface ForwardProxy {
  /** `http://127.0.0.1:PORT`, without credentials. */
  url: string;
  port: number;
  /** The URL with `user:password@` when started with `basicAuth`. */
  urlWithCredentials: string;
  logFile: string;
  /** The requests it carried so far, as logged: `GET http://…`, `CONNECT host:port`, … */
  requests(): Promise<string[]>;
}

/** Starts tinyproxy; it is stopped and its directory removed when `t` ends. */
export async function startForwardProxy(
  t: TestContext,
  options: ForwardProxyOptions = {},
): Promise<ForwardProxy> {
  const dir = await makeTempDir('forward-proxy');
  t.after(() => removeTempDir(dir));
  // tinyproxy takes no port 0: a free port is picked first, and picked again if it was taken
  // in between.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const logFile = join(dir, `tinyproxy-${port}.log`);
    const configFile = join(dir, `tinyproxy-${port}.conf`);
    await writeFile(configFile, tinyproxyConfig(port, logFile, options));
    const child = spawn('tinyproxy', ['-d', '-c', configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    t.after(() => stop(child));
    if (await listens(child, port)) return forwardProxy(port, logFile, options);
    await stop(child);
    if (attempt >= 3) throw new Error(`tinyproxy did not start: ${stderr}`);
  }
}

function forwardProxy(port: number, logFile: string, options: ForwardProxyOptions): ForwardProxy {
  const url = `http://127.0.0.1:${port}`;
  const auth = options.basicAuth;
  return {
    url,
    port,
    urlWithCredentials: auth ? `http://${auth.user}:${auth.password}@127.0.0.1:${port}` : url,
    logFile,
    async requests() {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      return [...log.matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)].map(
        (match) => match[1] as string,
      );
    },
  };
}

/**
 * Listens on 127.0.0.1 only and lets only 127.0.0.1 in. `LogLevel Connect` logs each request
 * line. No `User`: run as root, tinyproxy warns and stays root, which is what a test wants.
 */
function tinyproxyConfig(port: number, logFile: string, options: ForwardProxyOptions): string {
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    `LogFile "${logFile}"`,
    'LogLevel Connect',
    'MaxClients 64',
    'Allow 127.0.0.1',
  ];
  if (options.basicAuth) {
    lines.push(`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`);
  }
  for (const connectPort of options.connectPorts ?? []) lines.push(`ConnectPort ${connectPort}`);
  return `${lines.join('\n')}\n`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** True once `port` accepts connections; false when tinyproxy exited first. */
async function listens(child: ChildProcess, port: number): Promise<boolean> {
  let ready = false;
  await waitFor(
    async () => {
      if (child.exitCode !== null) return true;
      ready = await accepts(port);
      return ready;
    },
    10_000,
    `tinyproxy listening on ${port}`,
  );
  return ready && child.exitCode === null;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}
