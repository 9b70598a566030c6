/**
 * @module
 * nginx serving a synthetic registry: the sparse index at `/index/` (static files, with a
 * `config.json` whose `dl` uses the `{lowerprefix}` marker to point at the `.crate` files under
 * `/crates/`). One worker, like the other nginx baselines of the benchmark.
 */
import { join } from 'node:path';
import { nginxTempPaths, runNginx, type Server } from '../lib/servers.ts';

/** Starts nginx on a free 127.0.0.1 port with its config and logs in `dir`. */
export function serveRegistry(dir: string, wwwDir: string): Promise<Server> {
  return runNginx(dir, (port) => registryConfig(dir, wwwDir, port));
}

function registryConfig(dir: string, wwwDir: string, port: number): string {
  const origin = `http://127.0.0.1:${port}`;
  const config = JSON.stringify({
    dl: `${origin}/crates/{lowerprefix}/{crate}/{crate}-{version}.crate`,
    api: origin,
  });
  const temp = nginxTempPaths(dir);
  // The registry is cached under the home directory, which nginx's default unprivileged worker
  // user cannot read when the benchmark runs as root.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
${temp}
  server {
    listen 127.0.0.1:${port};
    location = /index/config.json {
      default_type application/json;
      return 200 '${config}';
    }
    location /index/ {
      root ${wwwDir};
      default_type text/plain;
    }
    location /crates/ {
      root ${wwwDir};
      default_type application/gzip;
    }
  }
}
`;
}
