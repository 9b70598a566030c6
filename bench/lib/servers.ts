/**
 * @module
 * The servers under test, each a child process on its own free port: cargo-cacher (the compiled
 * build through its launcher `bin/cargo-cacher`, as `npm start` runs it) and nginx (config
 * written into a temp dir, run in the foreground with `-p <dir> -c <conf> -g 'daemon off;'`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCertificates } from '../../test/helpers/tls-certs.ts';
import { type Child, startChild, stopChild, waitForPort } from './procs.ts';
import { freePort, nginxBinary } from './system.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'cargo-cacher');
const MAIN = join(REPO, 'dist', 'cli', 'main.js');

/** A server child and where it listens. */
export interface Server {
  child: Child;
  port: number;
  /** `http://127.0.0.1:PORT` (or `https://`). */
  url: string;
  stop(): Promise<void>;
}

/** How to start cargo-cacher. */
export interface ProxyLaunch {
  storageDir: string;
  /** Upstream sparse index URL. */
  sparse: string;
  tls?: TestCertificates;
  /** Extra CLI arguments (`-a -g <repo> -t 16`). */
  args?: string[];
  /** Node flags for profiling (`--cpu-prof`): node runs the compiled CLI without the launcher. */
  nodeArgs?: string[];
}

/** Starts cargo-cacher as a child process and waits until its port accepts connections. */
export async function startCacher(launch: ProxyLaunch): Promise<Server> {
  const port = await freePort();
  const args = ['-p', String(port), '--listen', '127.0.0.1', '-i', launch.storageDir];
  // Every client of the bench comes from 127.0.0.1, standing in for many machines: the
  // per-address cap (256 by default) would otherwise refuse the 257th of them.
  args.push('--max-connections-per-ip', '100000');
  args.push('-s', launch.sparse, ...(launch.args ?? ['--no-git']));
  if (launch.tls) args.push('--tls-cert', launch.tls.certFile, '--tls-key', launch.tls.keyFile);
  // The launcher execs node itself, so the pid is node's. Profiling flags (`--cpu-prof` is not
  // allowed in NODE_OPTIONS) start the compiled CLI with node directly instead.
  const env = { ...process.env, NODE_ENV: 'production' };
  const child = launch.nodeArgs
    ? startChild(process.execPath, [...launch.nodeArgs, MAIN, ...args], { cwd: REPO, env })
    : startChild(BIN, args, { cwd: REPO, env });
  await waitForPort(port, child);
  const scheme = launch.tls ? 'https' : 'http';
  return {
    child,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    stop: () => stopChild(child, 15_000),
  };
}

/** What nginx serves. */
export type NginxSite =
  /** Static files: `.crate` files from the proxy's storage layout, index files from a dir. */
  | { kind: 'static'; storageDir: string; indexRoot: string }
  /** The do-it-yourself cache: `proxy_cache` in front of an upstream's index and downloads. */
  | { kind: 'cache'; upstream: string };

/** Starts nginx with one worker process (cargo-cacher is one process too). */
export function startNginx(dir: string, site: NginxSite): Promise<Server> {
  return runNginx(dir, (port) => nginxConfig(dir, port, site));
}

/** nginx's temp directories, all below `dir` (its defaults are below /var, not ours to write). */
export function nginxTempPaths(dir: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((name) => `  ${name}_temp_path ${join(dir, `${name}_temp`)};`)
    .join('\n');
}

/** Runs nginx in the foreground with the configuration `configFor` writes for a free port. */
export async function runNginx(dir: string, configFor: (port: number) => string): Promise<Server> {
  const port = await freePort();
  await mkdir(join(dir, 'logs'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, configFor(port));
  const child = startChild(await nginxBinary(), ['-p', dir, '-c', conf, '-g', 'daemon off;']);
  await waitForPort(port, child);
  return { child, port, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

/**
 * The configuration. Static serving uses what Debian's default nginx.conf has (`sendfile`,
 * `tcp_nopush`), `etag on` (the default) and no `open_file_cache` (not a default either).
 */
function nginxConfig(dir: string, port: number, site: NginxSite): string {
  const temp = nginxTempPaths(dir);
  const server = site.kind === 'static' ? staticServer(site) : cacheServer(dir, site);
  return `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { application/json json; }
  default_type application/octet-stream;
${temp}
${server.http ?? ''}
  server {
    listen 127.0.0.1:${port};
${server.body}
  }
}
`;
}

/** The parts of a site's configuration: `http` block lines and the `server` body. */
interface SiteConfig {
  http?: string;
  body: string;
}

/** Crates at the proxy's storage keys: `crates/{ab}/{cd}/{name}/{name}-{version}.crate`. */
function staticServer(site: { storageDir: string; indexRoot: string }): SiteConfig {
  return {
    body: `    etag on;
    location ~ "^/api/v1/crates/(?<n>(?<p1>[a-z0-9_-]{2})(?<p2>[a-z0-9_-]{2})[a-z0-9_-]*)/(?<v>[^/]+)/download$" {
      root ${site.storageDir};
      default_type application/gzip;
      try_files /crates/$p1/$p2/$n/$n-$v.crate =404;
    }
    location /index/ {
      root ${site.indexRoot};
      default_type text/plain;
    }`,
  };
}

/**
 * What a user following a blog post would run: a static config.json whose `dl` points at nginx,
 * `proxy_cache` for the index (60 s, revalidated with the upstream's ETag) and for downloads
 * (a year: they never change), with `proxy_cache_lock` so a stampede makes one upstream fetch.
 */
function cacheServer(dir: string, site: { upstream: string }): SiteConfig {
  // From the Host header, as cargo-cacher does: cargo may reach nginx through a relay
  // (bench/lib/link.ts), and downloads must go the same way.
  const dl = 'http://$http_host/dl';
  const proxy = `proxy_pass ${site.upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache crates;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 120s;
      proxy_cache_use_stale error timeout updating;`;
  return {
    http: `  proxy_cache_path ${join(dir, 'cache')} levels=1:2 keys_zone=crates:32m max_size=20g inactive=30d use_temp_path=off;`,
    body: `    location = /index/config.json {
      default_type application/json;
      return 200 '{"dl":"${dl}"}';
    }
    location /index/ {
      ${proxy}
      proxy_cache_valid 200 60s;
      proxy_cache_valid 404 30s;
      proxy_cache_revalidate on;
    }
    location /dl/ {
      ${proxy}
      proxy_cache_valid 200 365d;
    }`,
  };
}
