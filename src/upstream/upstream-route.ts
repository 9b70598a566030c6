/**
 * @module
 * How upstreams are reached, read once at start: the outbound proxy and the `--upstream-ca`
 * certificates. The HTTP client and the git mirror are both built from it.
 */
import type { UpstreamNetwork } from '../config.ts';
import { readUpstreamCa, type UpstreamCa } from './upstream-ca.ts';
import type { UpstreamProxy } from './upstream-proxy.ts';

/** The outbound proxy and the extra CA (both optional: none means direct, default roots). */
export interface UpstreamRoute {
  proxy?: UpstreamProxy;
  ca?: UpstreamCa;
}

/** Reads the CA file (a bad one fails the start with one line) and pairs it with the proxy. */
export async function readUpstreamRoute(network: UpstreamNetwork): Promise<UpstreamRoute> {
  const ca = network.caFile === undefined ? undefined : await readUpstreamCa(network.caFile);
  return { proxy: network.proxy, ...(ca && { ca }) };
}
