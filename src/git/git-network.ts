/**
 * @module
 * The git mirror reaches its upstream the way undici does: through the same outbound proxy and
 * trusting the same extra CA. git children get a clean environment (`gitEnv`), so all of it is
 * passed explicitly, as `GIT_CONFIG_*` variables rather than `-c` arguments: a proxy password
 * then never shows in the process list.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type UpstreamCa, writeGitCaBundle } from '../upstream/upstream-ca.ts';
import { proxyFor, type UpstreamProxy } from '../upstream/upstream-proxy.ts';

/** What the git mirror's fetches need to reach upstream. */
export interface GitNetworkSettings {
  /** The upstream git URL (anything `git fetch` accepts). */
  upstreamUrl: string;
  proxy: UpstreamProxy;
  /** The extra CA and where to write git's bundle (system roots plus that CA). */
  ca?: { ca: UpstreamCa; bundleFile: string };
}

/**
 * Writes git's CA bundle when there is an extra CA, and returns the environment of the mirror's
 * fetches: `http.proxy` when the upstream goes through the proxy (`NO_PROXY` decided as for
 * undici, and passed on for the hosts a redirect may lead to), `http.sslCAInfo` with the bundle
 * (it replaces git's default bundle, hence the system roots in it).
 */
export async function prepareGitNetwork(
  settings: GitNetworkSettings,
): Promise<Record<string, string>> {
  const config: [string, string][] = [];
  const proxy = proxyFor(settings.proxy, settings.upstreamUrl);
  if (proxy !== undefined) config.push(['http.proxy', proxy]);
  if (settings.ca) {
    const { ca, bundleFile } = settings.ca;
    await mkdir(dirname(bundleFile), { recursive: true });
    await writeGitCaBundle(bundleFile, ca);
    config.push(['http.sslCAInfo', bundleFile]);
    if (proxy?.startsWith('https:')) config.push(['http.proxySSLCAInfo', bundleFile]);
  }
  const env: Record<string, string> = gitConfigEnv(config);
  if (settings.proxy.noProxy !== '') {
    env.NO_PROXY = settings.proxy.noProxy;
    env.no_proxy = settings.proxy.noProxy;
  }
  return env;
}

/** `git -c key=value` as environment variables (git 2.31 and later). */
export function gitConfigEnv(entries: readonly [string, string][]): Record<string, string> {
  if (entries.length === 0) return {};
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(entries.length) };
  entries.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

/**
 * A hint for a git failure that looks like an untrusted certificate (OpenSSL's and GnuTLS's
 * words, as curl passes them on), naming the flag that fixes it; `undefined` otherwise.
 */
export function gitCertificateHint(message: string): string | undefined {
  if (!/certificate|SSL peer|self.signed|issuer/i.test(message)) return undefined;
  return 'if a private CA (or a TLS-inspecting proxy) signs its certificate, trust that CA with --upstream-ca <pem>';
}
