/**
 * @module
 * The outbound proxy every upstream request goes through: from `--upstream-proxy <url>`, or else
 * from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (either case), or none (`--upstream-proxy none`).
 * The same decision serves undici (`http-client.ts`) and the git mirror (`git/git-network.ts`),
 * so both reach an upstream the same way.
 */
import { Errors } from '../errors.ts';
import { redactUrl } from './redact-url.ts';

/** Where the proxy settings came from. */
export type ProxySource = 'flag' | 'environment' | 'none';

/** The proxy for upstream requests. URLs keep their credentials: show them with `redactUrl`. */
export interface UpstreamProxy {
  /** Proxy for `http://` upstreams (plain forwarding); `undefined`: direct. */
  http: string | undefined;
  /** Proxy for `https://` upstreams (a CONNECT tunnel); `undefined`: direct. */
  https: string | undefined;
  /** Hosts reached directly, in `NO_PROXY` syntax (`host`, `.domain`, `host:port`, `*`). */
  noProxy: string;
  source: ProxySource;
}

/** No proxy at all. */
export const NO_PROXY: UpstreamProxy = Object.freeze({
  http: undefined,
  https: undefined,
  noProxy: '',
  source: 'none',
});

/** The environment variables read, as `process.env` holds them. */
export type ProxyEnvironment = Readonly<Record<string, string | undefined>>;

/**
 * Resolves the proxy: `flag` (`--upstream-proxy`) is a URL for both schemes, or `none`; without
 * it, `https_proxy`/`HTTPS_PROXY` and `http_proxy`/`HTTP_PROXY` (lower case first, as curl and
 * undici read them). An https upstream with no https proxy set uses the http one, as undici does.
 * `NO_PROXY` applies to an explicit proxy too; `none` ignores the environment entirely.
 */
export function resolveUpstreamProxy(
  flag: string | undefined,
  env: ProxyEnvironment = {},
): UpstreamProxy {
  const noProxy = (env.no_proxy ?? env.NO_PROXY ?? '').trim();
  if (flag !== undefined) {
    if (flag.trim() === 'none') return NO_PROXY;
    const url = checkProxyUrl('--upstream-proxy', flag);
    return { http: url, https: url, noProxy, source: 'flag' };
  }
  const http = envProxy(env, 'http_proxy');
  const https = envProxy(env, 'https_proxy') ?? http;
  if (http === undefined && https === undefined) return NO_PROXY;
  return { http, https, noProxy, source: 'environment' };
}

function envProxy(env: ProxyEnvironment, name: string): string | undefined {
  const value = (env[name] ?? env[name.toUpperCase()] ?? '').trim();
  return value === '' ? undefined : checkProxyUrl(name.toUpperCase(), value);
}

/**
 * Checks a proxy URL; a bare `host:port` (as many environments set it) means `http://host:port`.
 * The message never repeats the credentials.
 */
export function checkProxyUrl(what: string, value: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL | undefined;
  try {
    url = new URL(withScheme);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `${what} must be an http:// or https:// proxy URL (or "none"), got "${redactUrl(value)}"`,
    );
  }
  return withScheme;
}

/** The proxy an upstream URL goes through, or `undefined` when it is reached directly. */
export function proxyFor(proxy: UpstreamProxy, url: string): string | undefined {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return undefined; // a local path (the git index): no network
  }
  const chosen =
    target.protocol === 'https:'
      ? proxy.https
      : target.protocol === 'http:'
        ? proxy.http
        : undefined;
  if (chosen === undefined || bypasses(proxy.noProxy, target)) return undefined;
  return chosen;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** undici's `NO_PROXY` rules: `*`, a host or its subdomains, optionally with a port. */
function bypasses(noProxy: string, target: URL): boolean {
  if (noProxy === '*') return true;
  const host = target.hostname.toLowerCase();
  const port = Number(target.port) || DEFAULT_PORTS[target.protocol] || 0;
  for (const entry of noProxy.split(/[,\s]+/)) {
    if (entry === '') continue;
    const match = /^(.+):(\d+)$/.exec(entry);
    const entryHost = (match ? (match[1] as string) : entry).replace(/^\*?\./, '').toLowerCase();
    if (match && Number(match[2]) !== port) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return true;
  }
  return false;
}

/** The proxy settings as `/health` and the startup line show them: credentials redacted. */
export function describeUpstreamProxy(proxy: UpstreamProxy): {
  source: ProxySource;
  http?: string;
  https?: string;
  noProxy?: string;
} {
  if (proxy.source === 'none') return { source: 'none' };
  return {
    source: proxy.source,
    ...(proxy.http !== undefined && { http: redactUrl(proxy.http) }),
    ...(proxy.https !== undefined && { https: redactUrl(proxy.https) }),
    ...(proxy.noProxy !== '' && { noProxy: proxy.noProxy }),
  };
}
