/**
 * @module
 * Starts a real cargo-cacher instance on 127.0.0.1 port 0, built the way the CLI builds one,
 * for integration and end-to-end tests. Several can run side by side.
 */
import type { FastifyInstance } from 'fastify';
import { createGitMirror } from '../../src/cli/serve.ts';
import { buildConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { AppDeps } from '../../src/server/app.ts';
import { buildApp } from '../../src/server/app.ts';
import { createServices } from '../../src/server/services.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { createHttpClient, type HttpClient } from '../../src/upstream/http-client.ts';
import type { FakeUpstream } from './fake-upstream.ts';
import { makeTempDir, removeTempDir } from './temp-dir.ts';

/** How to start a test proxy. */
export interface ProxyOptions {
  /** The fake upstream to use for the sparse index (and, through its dl, crates). */
  upstream?: FakeUpstream;
  /** Settings over the test defaults (port 0 on 127.0.0.1, a temp storage dir). */
  settings?: Partial<Config>;
  /** Serve the git index, mirroring this repository (path or URL). */
  gitUrl?: string;
  /** Reuse a storage directory (to test restarts); default a new temp dir, removed on close. */
  storageDir?: string;
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
  const level = (process.env.CARGO_CACHER_TEST_LOG ?? 'silent') as Config['logLevel'];
  const log = createLogger({ level, format: 'json', destination: process.stderr });
  const store = new FsBlobStore(storageDir);
  await store.init();
  await store.cleanup();
  const http = createHttpClient(config.timeouts);
  const git = createGitMirror(config, log);
  const deps = createServices({ config, log, store, http, ...(git && { git }) });
  const app = buildApp(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  await git?.start(config.publicUrl ?? url);
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
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await git?.close();
      await http.close();
      if (ownsStorage) await removeTempDir(storageDir);
    },
  };
}
