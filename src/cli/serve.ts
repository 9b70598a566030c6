/**
 * @module
 * `cargo-cacher` (serve): builds one instance from the flags and runs it until SIGINT/SIGTERM.
 */
import { join, resolve } from 'node:path';
import { buildConfig, type Config } from '../config.ts';
import { GitMirror } from '../git/git-mirror.ts';
import { type AppLogger, createLogger, levelForVerbosity } from '../logger.ts';
import { buildApp } from '../server/app.ts';
import { createServices } from '../server/services.ts';
import { FsBlobStore } from '../storage/fs-blob-store.ts';
import { createHttpClient } from '../upstream/http-client.ts';
import type { ServeOptions } from './main.ts';

/** Turns parsed flags into a validated config. */
export function configFromOptions(options: ServeOptions): Readonly<Config> {
  return buildConfig({
    port: options.port,
    listen: options.listen,
    storageDir: resolve(options.index),
    sparseUpstream: options.sparse,
    crateUpstream: options.upstream,
    publicUrl: options.publicUrl,
    indexTtlMs: options.indexTtl,
    gitRefreshMs: options.refresh,
    git: {
      enabled: options.git !== false,
      url: typeof options.git === 'string' ? options.git : '',
    },
    offline: options.offline,
    all: options.all,
    prefetch: options.prefetch,
    threads: options.threads,
    logLevel: levelForVerbosity(typeof options.debug === 'number' ? options.debug : 1),
    logFormat: options.logFormat,
  });
}

/** Starts the proxy and resolves once it listens. */
export async function serve(options: ServeOptions): Promise<void> {
  const config = configFromOptions(options);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const store = new FsBlobStore(config.storageDir);
  await store.init();
  const removed = await store.cleanup();
  if (removed > 0) log.info({ removed }, 'removed temporary files left by an earlier run');
  const http = createHttpClient(config.timeouts);
  const git = createGitMirror(config, log);
  const app = buildApp(createServices({ config, log, store, http, ...(git && { git }) }));
  await app.listen({ port: config.port, host: config.listen });
  const { port } = app.server.address() as { port: number };
  logStartup(log, config, app.server.address());
  await git?.start(config.publicUrl ?? `http://localhost:${port}`);
  const stop = async (signal: string) => {
    log.notice({ signal }, 'shutting down: finishing in-flight responses');
    await app.close();
    await git?.close();
    await http.close();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop(signal).catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exitCode = 1;
      });
    });
  }
}

/** The git index mirror, unless `--no-git`. It lives under the storage root. */
export function createGitMirror(config: Readonly<Config>, log: AppLogger): GitMirror | undefined {
  if (!config.git.enabled) return undefined;
  if (config.publicUrl === undefined && !isLoopback(config.listen)) {
    log.warn(
      'serving the git index without --public-url: its config.json sends downloads to ' +
        'http://localhost:PORT, which only works on this machine',
    );
  }
  return new GitMirror({
    gitDir: join(config.storageDir, 'git', 'index.git'),
    upstreamUrl: config.git.url,
    refreshMs: config.gitRefreshMs,
    log,
  });
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

function logStartup(log: AppLogger, config: Readonly<Config>, address: unknown): void {
  const where =
    typeof address === 'object' && address !== null
      ? `${(address as { address: string }).address}:${(address as { port: number }).port}`
      : String(address);
  log.notice(
    {
      listen: where,
      storage: config.storageDir,
      sparseUpstream: config.sparseUpstream ?? 'none',
      crateUpstream: config.crateUpstream ?? "upstream config.json's dl",
      offline: config.offline,
    },
    `cargo-cacher listening on ${where}, storing in ${config.storageDir}, upstream ${config.sparseUpstream ?? 'none'}`,
  );
}
