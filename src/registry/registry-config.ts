/**
 * @module
 * The registry's `config.json` (cargo-util-schemas `RegistryConfig`, kebab-case keys).
 */

/** The wire shape of `config.json`. Unknown keys are kept: cargo ignores them, we pass them on. */
export interface RegistryConfigWire {
  dl: string;
  api?: string;
  'auth-required'?: boolean;
  [key: string]: unknown;
}

/** Parses an upstream `config.json`, or throws a `TypeError` naming what is wrong. */
export function parseRegistryConfig(body: Buffer | string): RegistryConfigWire {
  const raw: unknown = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError('config.json is not a JSON object');
  }
  const config = raw as Record<string, unknown>;
  if (typeof config.dl !== 'string' || config.dl === '') {
    throw new TypeError('config.json has no "dl" string');
  }
  return config as RegistryConfigWire;
}

/**
 * The `config.json` the proxy serves at `publicUrl` (no trailing slash): upstream's, with `dl`
 * pointing at this proxy's download route and, when upstream has an `api`, `api` pointing at
 * this proxy too, so `cargo search --registry mirror` works where only the cache is reachable
 * (cargo appends `/api/v1/...` to `api`, which must have no trailing slash). Key order is kept
 * so the bytes stay stable while upstream's do.
 */
export function rewriteRegistryConfig(
  upstream: RegistryConfigWire,
  publicUrl: string,
): RegistryConfigWire {
  const served: RegistryConfigWire = { ...upstream, dl: publicUrl + DOWNLOAD_ROUTE_BASE };
  // A registry without an API (an index on a file server) keeps having none: cargo then says
  // so itself instead of calling routes that have nothing behind them.
  if (typeof upstream.api === 'string' && upstream.api !== '') served.api = publicUrl;
  return served;
}

/** The path below the public URL where the proxy serves crate downloads (the seed's path). */
export const DOWNLOAD_ROUTE_BASE = '/api/v1/crates';
