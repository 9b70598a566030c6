/**
 * @module
 * Starts a real cargo-cacher instance on 127.0.0.1 port 0, built the way the CLI builds one,
 * for integration and end-to-end tests. Several can run side by side.
 */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildConfig, type Config, type ConfigSettings } from '../../src/config.ts';
import { type Instance, startInstance } from '../../src/instance.ts';
import { createLogger } from '../../src/logger.ts';
import type { RequestObserver } from '../../src/observe/records.ts';
import type { AppDeps } from '../../src/server/app.ts';
import type { HttpClient } from '../../src/upstream/http-client.ts';
import { type FakeUpstream, type FakeUpstreamOptions, startFakeUpstream } from './fake-upstream.ts';
import { makeTempDir, removeTempDir } from './temp-dir.ts';

/** How to start a test proxy. */
export interface ProxyOptions {
  /** The fake upstream to use for the sparse index (and, through its dl, crates). */
  upstream?: FakeUpstream;
  /** Settings over the test defaults (port 0 on 127.0.0.1, a temp storage dir). */
  settings?: ConfigSettings;
  /** Serve the git index, mirroring this repository (path or URL). */
  gitUrl?: string;
  /** Reuse a storage directory (to test restarts); default a new temp dir, removed on close. */
  storageDir?: string;
  /** Told about every finished request (to see what clients sent, e.g. the HTTP version). */
  observers?: RequestObserver[];
  /** Keep log lines (info and up, or from the level given) in {@link RunningProxy.logs}. */
  captureLogs?: boolean | 'debug';
  /** The instance's clock (default `Date.now`); a test passes `() => clock.ms` to move time. */
  now?: () => number;
  /** How the instance waits on its clock (the registry API's rate limit); see ManualClock. */
  sleep?: (ms: number) => Promise<unknown>;
}

/** One captured log line. */
export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

/** A running test proxy. */
export interface RunningProxy {
  url: string;
  /** `sparse+` registry URL for cargo. */
  sparseRegistry: string;
  /** Git registry URL for cargo (`<url>/index`). */
  gitRegistry: string;
  config: Readonly<Config>;
  deps: AppDeps;
  app: FastifyInstance;
  http: HttpClient;
  storageDir: string;
  instance: Instance;
  /** Log lines, when started with `captureLogs`. */
  logs: LogLine[];
  /** Stops the proxy; removes the storage dir when the helper made it. */
  close(): Promise<void>;
}

/** Starts a proxy. Logs are silent unless `CARGO_CACHER_TEST_LOG` names a level. */
export async function startProxy(options: ProxyOptions = {}): Promise<RunningProxy> {
  const ownsStorage = options.storageDir === undefined;
  const storageDir = options.storageDir ?? (await makeTempDir('cargo-cacher-store'));
  const config = buildConfig({
    port: 0,
    listen: '127.0.0.1',
    storageDir,
    git: { enabled: options.gitUrl !== undefined, url: options.gitUrl ?? '' },
    ...(options.upstream && { sparseUpstream: options.upstream.indexUrl }),
    ...options.settings,
  });
  const logs: LogLine[] = [];
  const envLevel = (process.env.CARGO_CACHER_TEST_LOG ?? 'silent') as Config['logLevel'];
  const level = options.captureLogs === 'debug' ? 'debug' : options.captureLogs ? 'info' : envLevel;
  const destination = options.captureLogs ? captureInto(logs) : process.stderr;
  const log = createLogger({ level, format: 'json', destination });
  const instance = await startInstance(config, log, {
    ...(options.observers && { observers: options.observers }),
    ...(options.now && { now: options.now }),
    ...(options.sleep && { sleep: options.sleep }),
  });
  const { app, deps, http, url } = instance;
  let closed = false;
  return {
    url,
    sparseRegistry: `sparse+${url}/index/`,
    gitRegistry: `${url}/index`,
    config,
    deps,
    app,
    http,
    storageDir,
    instance,
    logs,
    async close() {
      if (closed) return;
      closed = true;
      await instance.close();
      if (ownsStorage) await removeTempDir(storageDir);
    },
  };
}

/** A stream that parses each JSON log line into `lines`. */
function captureInto(lines: LogLine[]): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine);
      }
      callback();
    },
  });
}

/** A fake upstream and a proxy in front of it. */
export interface UpstreamAndProxy {
  upstream: FakeUpstream;
  proxy: RunningProxy;
}

/**
 * Starts a fake upstream (publishing `upstream.crates`) and a proxy in front of it; both are
 * closed when the test ends.
 */
export async function startUpstreamAndProxy(
  t: { after: (fn: () => Promise<void>) => void },
  options: Omit<ProxyOptions, 'upstream'> & { upstream?: FakeUpstreamOptions } = {},
): Promise<UpstreamAndProxy> {
  const { upstream: upstreamOptions, ...proxyOptions } = options;
  const upstream = await startFakeUpstream(upstreamOptions);
  t.after(() => upstream.close());
  const proxy = await startProxy({ ...proxyOptions, upstream });
  t.after(() => proxy.close());
  return { upstream, proxy };
}
