/**
 * @module
 * The flags of the upstream network (`--upstream-proxy`, `--upstream-ca`), shared by every
 * command that talks to upstream: the server, `prefetch` and `verify --repair`.
 */
import { Option } from '@commander-js/extra-typings';

/**
 * `--upstream-proxy`: checked by buildConfig rather than an argParser, whose error commander
 * prints with the value in it (a password). The help names the variables it defaults to, never
 * their values.
 */
export const upstreamProxyOption = () =>
  new Option(
    '--upstream-proxy <url>',
    'outbound proxy for every upstream request (index, crates, git), or "none" ' +
      '(default: HTTPS_PROXY/HTTP_PROXY, NO_PROXY from the environment)',
  );

/** The help of `--upstream-ca <pem>`. */
export const UPSTREAM_CA_HELP =
  'trust this CA (PEM) for upstreams, index, crates and git, besides the system roots';
