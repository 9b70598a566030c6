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
 * The `config.json` the proxy serves: upstream's, with `dl` pointing at this proxy's download
 * route. `api` stays upstream's so `cargo search --registry mirror` and `publish` keep working.
 * Key order is kept so the bytes stay stable while upstream's do.
 */
export function rewriteRegistryConfig(
  upstream: RegistryConfigWire,
  downloadBase: string,
): RegistryConfigWire {
  return { ...upstream, dl: downloadBase };
}

/** The path below the public URL where the proxy serves crate downloads (the seed's path). */
export const DOWNLOAD_ROUTE_BASE = '/api/v1/crates';
