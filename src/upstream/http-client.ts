/**
 * @module
 * The one HTTP client for upstreams: an undici `Agent` with timeouts, redirects and an
 * identifying User-Agent, behind the outbound proxy when there is one (undici's
 * `EnvHttpProxyAgent`, fed from our own settings) and trusting `--upstream-ca` besides the
 * default roots. Every upstream request goes through {@link HttpClient.get}.
 */
import { type LookupAddress, type LookupAllOptions, type LookupOptions, lookup } from 'node:dns';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, EnvHttpProxyAgent, interceptors, Pool, request } from 'undici';
import type { UpstreamTimeouts } from '../config.ts';
import { Errors } from '../errors.ts';
import { USER_AGENT } from '../version.ts';
import { redactUrl, redactUrlsIn } from './redact-url.ts';
import { trustedCas, type UpstreamCa } from './upstream-ca.ts';
import { NO_PROXY, proxyFor, type UpstreamProxy } from './upstream-proxy.ts';
import type { UpstreamRoute } from './upstream-route.ts';

/** What an upstream answered. The body must be consumed or destroyed by the caller. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** Fetches upstream URLs. Injected so tests and later tiers can replace it. */
export interface HttpClient {
  /**
   * GETs a URL; network failures reject with `CARGO_CACHER_UPSTREAM_UNREACHABLE`, timeouts with
   * `CARGO_CACHER_UPSTREAM_TIMEOUT`.
   */
  get(url: string, headers?: Record<string, string>): Promise<UpstreamResponse>;
  /** Describes a failure of a request or of its body (the same mapping {@link get} uses). */
  describeFailure?(url: string, cause: unknown): Error;
  close(): Promise<void>;
}

/** Creates the undici-backed client. Redirects are followed, as cargo follows them. */
export function createHttpClient(
  timeouts: UpstreamTimeouts,
  route: UpstreamRoute = {},
): HttpClient {
  const proxy = route.proxy ?? NO_PROXY;
  const dispatcher = createDispatcher(timeouts, proxy, route.ca).compose(
    interceptors.redirect({ maxRedirections: 5 }),
  );
  const describeFailure = (url: string, cause: unknown) =>
    upstreamFailure(url, cause, timeouts, proxyFor(proxy, url));

  return {
    async get(url, headers = {}) {
      try {
        const response = await request(url, {
          method: 'GET',
          dispatcher,
          headers: { 'user-agent': USER_AGENT, ...headers },
        });
        return { status: response.statusCode, headers: response.headers, body: response.body };
      } catch (cause) {
        throw describeFailure(url, cause);
      }
    },
    describeFailure,
    async close() {
      await dispatcher.close();
    },
  };
}

/**
 * A plain `Agent`, or undici's `EnvHttpProxyAgent` given the proxy explicitly (so the process
 * environment is never read behind the settings' back): plain forwarding for http upstreams
 * (`proxyTunnel: false`), a CONNECT tunnel for https ones, direct for `NO_PROXY` hosts. Its
 * Proxy-Authorization comes from the credentials in the proxy URL. Every leg keeps the
 * timeouts and the connection cap, and TLS to upstreams trusts the extra CA.
 */
function createDispatcher(
  timeouts: UpstreamTimeouts,
  proxy: UpstreamProxy,
  ca: UpstreamCa | undefined,
): Dispatcher {
  const cas = ca && trustedCas(ca);
  const options = {
    connectTimeout: timeouts.connectMs,
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    connections: 64,
    connect: { lookup: lookupRefusingInvalid, ...(cas && { ca: cas }) },
  };
  if (proxy.http === undefined && proxy.https === undefined) return new Agent(options);
  // The tunnel's TLS (`requestTls`) and the connection to an https proxy (`proxyTls`) are set up
  // apart from `connect`, so they get the deadline and the CAs themselves.
  const tls = { timeout: timeouts.connectMs, ...(cas && { ca: cas }) };
  const pool = (origin: URL | string, extra: object) =>
    new Pool(origin, {
      connections: options.connections,
      headersTimeout: options.headersTimeout,
      bodyTimeout: options.bodyTimeout,
      ...extra,
    });
  return new EnvHttpProxyAgent({
    ...options,
    httpProxy: proxy.http ?? '',
    httpsProxy: proxy.https ?? '',
    noProxy: proxy.noProxy,
    proxyTunnel: false,
    requestTls: tls,
    proxyTls: tls,
    // undici's own pools toward the proxy would wait 300 s for its answer.
    factory: pool,
    clientFactory: pool,
  });
}

/** The flag that sets each undici timeout, named in the error so the fix is obvious. */
const TIMEOUTS: Record<string, [keyof UpstreamTimeouts, string, string]> = {
  UND_ERR_CONNECT_TIMEOUT: ['connectMs', 'connect', '--upstream-connect-timeout'],
  UND_ERR_HEADERS_TIMEOUT: ['headersMs', 'answer', '--upstream-timeout'],
  UND_ERR_BODY_TIMEOUT: ['bodyMs', 'send its body', '--upstream-body-timeout'],
};

/** Plain words for the network errors an operator meets. */
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name does not resolve (DNS)',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed before the answer was complete',
};

/**
 * Wraps a network error: `CARGO_CACHER_UPSTREAM_TIMEOUT` for undici's timeouts, else
 * `CARGO_CACHER_UPSTREAM_UNREACHABLE`, whose message says why in one line: an untrusted TLS
 * certificate (naming `--upstream-ca`), a proxy that refused, or a network error in plain words.
 * `via` is the proxy the request went through. undici's `UND_ERR_*` code stays in `cause`.
 */
export function upstreamFailure(
  url: string,
  cause: unknown,
  timeouts?: UpstreamTimeouts,
  via?: string,
): Error {
  const reason = (cause as { code?: string; message?: string }) ?? {};
  const host = new URL(url).host;
  const proxied = via === undefined ? '' : ` via proxy ${redactUrl(via)}`;
  const certificate = certificateProblem(cause);
  if (certificate) {
    return Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE(
      `upstream ${host}: TLS certificate not trusted: ${certificate}${proxied}; if a private CA ` +
        '(or a TLS-inspecting proxy) signs it, trust that CA with --upstream-ca <pem>',
      { cause, retryAfter: 5 },
    );
  }
  const refusal = via === undefined ? undefined : proxyRefusal(reason.message ?? '');
  if (refusal) {
    return Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE(
      `upstream ${host} unreachable: proxy ${redactUrl(via as string)} ${refusal}`,
      { cause, retryAfter: 5 },
    );
  }
  const timeout = reason.code === undefined ? undefined : TIMEOUTS[reason.code];
  if (timeout) {
    const [key, what, flag] = timeout;
    const limit = timeouts ? ` within ${timeouts[key] / 1000}s (${flag})` : ` in time (${flag})`;
    return Errors.CARGO_CACHER_UPSTREAM_TIMEOUT(
      `upstream ${host} did not ${what}${limit}${proxied}`,
      { cause, retryAfter: 5 },
    );
  }
  const words =
    (reason.code && REASONS[reason.code]) ?? redactUrlsIn(reason.message ?? 'unknown error');
  const code = reason.code && REASONS[reason.code] ? ` (${reason.code})` : '';
  const check = via === undefined ? 'check the network and -s/-u' : 'check the proxy and -s/-u';
  return Errors.CARGO_CACHER_UPSTREAM_UNREACHABLE(
    `upstream ${host} unreachable${proxied}: ${words}${code}; ${check}`,
    { cause, retryAfter: 5 },
  );
}

/**
 * The certificate error in `cause` or its causes (undici wraps one met through a proxy), as
 * `reason (CODE)`; `undefined` for any other failure. The codes are OpenSSL's, as Node gives them.
 */
function certificateProblem(cause: unknown): string | undefined {
  for (let err = cause, depth = 0; err && depth < 4; depth++) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) {
      // Node 24 appends advice of its own ("try running Node.js with --use-system-ca"): the
      // flag to suggest here is ours.
      const reason = typeof message === 'string' ? message.split(';')[0] : 'rejected';
      return `${reason} (${code})`;
    }
    err = (err as { cause?: unknown }).cause;
  }
  return undefined;
}

/** undici's words for a proxy that would not carry the request, as a plain sentence. */
function proxyRefusal(message: string): string | undefined {
  const status = /Proxy response \((\d+)\)|Proxy Authentication Required \((407)\)/.exec(message);
  const code = status?.[1] ?? status?.[2];
  if (code === undefined) return undefined;
  if (code === '407') {
    return 'answered 407 Proxy Authentication Required: check the user and password in its URL';
  }
  return `refused the request with ${code} (its access rules may not allow this host or port)`;
}

/**
 * DNS lookup that answers names under `.invalid` with ENOTFOUND at once, as RFC 6761 §6.4 asks
 * of resolvers ("always return immediate negative responses"): no query leaves the machine.
 */
function lookupRefusingInvalid(
  hostname: string,
  options: LookupOptions,
  callback: LookupCallback,
): void {
  if (/(^|\.)invalid\.?$/i.test(hostname)) {
    const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    err.code = 'ENOTFOUND';
    process.nextTick(callback, err, '', 0);
    return;
  }
  lookup(hostname, { ...options, all: options.all === true } as LookupAllOptions, callback);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** Reads a whole (small) body into memory, failing past `maxBytes` or on a broken stream. */
export async function readBody(
  url: string,
  body: Readable,
  maxBytes: number,
  describe: (url: string, cause: unknown) => Error = upstreamFailure,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        body.destroy();
        throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
          `upstream body of ${url} exceeds ${maxBytes} bytes`,
        );
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'CARGO_CACHER_UPSTREAM_INVALID') throw err;
    throw describe(url, err);
  }
  return Buffer.concat(chunks);
}

/** Returns one header as a string (first value when repeated). */
export function headerValue(
  headers: UpstreamResponse['headers'],
  name: string,
): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Discards a body we are not going to read, so the connection can be reused. */
export async function discardBody(body: Readable): Promise<void> {
  try {
    for await (const _ of body) {
      // drain
    }
  } catch {
    // the connection is gone anyway
  }
}
