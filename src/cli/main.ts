#!/usr/bin/env node
/**
 * @module
 * The `cargo-cacher` command line. Flags keep the seed's letters and meanings. This is the only
 * place that sets `process.exitCode`.
 */
import { Command, Option } from '@commander-js/extra-typings';
import { DEFAULTS, defaultStorageDir } from '../config.ts';
import { isCacherError } from '../errors.ts';
import { redactUrlsIn } from '../upstream/redact-url.ts';
import { VERSION } from '../version.ts';
import { buildExportCommand, buildImportCommand } from './bundle-commands.ts';
import { buildConfigCommand } from './config-command.ts';
import { applyLayersBeforeServe, settingsSource } from './config-layers.ts';
import { isMainModule } from './entry-point.ts';
import {
  buildGcCommand,
  buildReconcileCommand,
  buildVerifyCommand,
} from './maintenance-commands.ts';
import {
  collect,
  increase,
  parseConnectionCount,
  parseDurationFlag,
  parsePort,
  parsePositiveInt,
  parseSizeFlag,
  parseSparseFlag,
  parseUrlFlag,
  parseUrlListFlag,
} from './options.ts';
import { prefetchCommand } from './prefetch.ts';
import {
  collectChannel,
  parseChannelList,
  parseRustupUpstream,
  parseTargetList,
} from './rustup-options.ts';
import { serve } from './serve.ts';
import { buildStatsCommand } from './stats.ts';
import { STORAGE_OPTIONS } from './storage-options.ts';
import { UPSTREAM_CA_HELP, upstreamProxyOption } from './upstream-options.ts';

/**
 * Builds the program; exported so tests can parse arguments without starting anything. Duration
 * defaults are shown in the flags' own syntax (`60s`): a bare number would read as seconds.
 */
export function buildProgram() {
  return new Command('cargo-cacher')
    .description('A caching proxy for crates.io: sparse and git index, verified crate downloads')
    .version(VERSION, '-V, --version')
    .enablePositionalOptions()
    .option(
      '--config <file>',
      'read settings from this TOML file, or "none" (default: /etc/cargo-cacher/config.toml when it exists)',
    )
    .option('-p, --port <n>', 'port to listen on', parsePort, DEFAULTS.port)
    .option('--listen <addr>', 'address to listen on', DEFAULTS.listen)
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .option(
      '-s, --sparse <url>',
      'upstream sparse index, or "none"; several equivalent ones comma-separated, tried in order',
      parseSparseFlag,
      DEFAULTS.sparseUpstream,
    )
    .option(
      '-u, --upstream <url>',
      "crate download source (default: the upstream index's dl); several comma-separated",
      parseUrlListFlag,
    )
    .option('-e, --public-url <url>', 'URL clients reach this proxy at', parseUrlFlag)
    .option('--tls-cert <pem>', 'serve HTTPS with HTTP/2 using this certificate chain (PEM)')
    .option('--tls-key <pem>', 'private key of --tls-cert (PEM)')
    .addOption(
      new Option(
        '--index-ttl <duration>',
        'trust a cached index file this long before revalidating',
      )
        .argParser(parseDurationFlag)
        .default(DEFAULTS.indexTtlMs, `${DEFAULTS.indexTtlMs / 1000}s`),
    )
    .addOption(
      new Option('-r, --refresh <duration>', 'git index refresh interval')
        .argParser(parseDurationFlag)
        .default(DEFAULTS.gitRefreshMs, `${DEFAULTS.gitRefreshMs / 1000}s`),
    )
    .option('-g, --git <url>', 'upstream git index (anything git clone accepts)', DEFAULTS.gitUrl)
    .option('--no-git', 'do not mirror or serve the git index')
    .option('-a, --all', 'mirror every crate of the git index', false)
    .option('--skip-yanked', 'with -a: leave yanked versions out', false)
    .option(
      '--mirror-filter <file>',
      'with -a: mirror only these roots (name, name@req, Cargo.lock or dir) and their dependencies (repeatable)',
      collect,
      [] as string[],
    )
    .option(
      '--mirror-keep <n>',
      'with --mirror-filter: the newest n versions of each crate root',
      parsePositiveInt,
      1,
    )
    .option(
      '--rustup-upstream <url>',
      'rustup dist server behind /dist and /rustup, or "none" (serve only what is held)',
      parseRustupUpstream,
      DEFAULTS.rustupUpstream,
    )
    .addOption(
      new Option(
        '--rustup-ttl <duration>',
        'trust a cached channel manifest or rustup-init this long before revalidating',
      )
        .argParser(parseDurationFlag)
        .default(undefined, 'the --index-ttl'),
    )
    .option(
      '--rustup-mirror <channels>',
      'download these toolchains in the background (stable,1.90.0,nightly-2026-11-01)',
      parseChannelList,
    )
    .addOption(
      new Option('--rustup-targets <triples>', 'targets --rustup-mirror downloads for')
        .argParser(parseTargetList)
        .default(undefined, "this machine's"),
    )
    .addOption(
      new Option('--rustup-profile <profile>', 'components --rustup-mirror downloads')
        .choices(['minimal', 'default', 'complete'] as const)
        .default('minimal' as const),
    )
    .option(
      '-f, --prefetch <path>',
      'prefetch crates from a Cargo.lock, a name=version list or a directory (repeatable)',
      collect,
      [] as string[],
    )
    .option(
      '-t, --threads <n>',
      'concurrent background downloads',
      parsePositiveInt,
      DEFAULTS.threads,
    )
    .option('--offline', 'never contact upstream; serve only what is cached', false)
    .option(
      '--only-held',
      'list only held versions in index files and fetch nothing for clients (jobs still fetch)',
      false,
    )
    .addOption(
      new Option('--upstream-connect-timeout <duration>', 'give up connecting to upstream after')
        .argParser(parseDurationFlag)
        .default(DEFAULTS.timeouts.connectMs, `${DEFAULTS.timeouts.connectMs / 1000}s`),
    )
    .addOption(
      new Option('--upstream-timeout <duration>', "give up waiting for upstream's answer after")
        .argParser(parseDurationFlag)
        .default(DEFAULTS.timeouts.headersMs, `${DEFAULTS.timeouts.headersMs / 1000}s`),
    )
    .addOption(
      new Option('--upstream-body-timeout <duration>', 'give up when an upstream body stalls for')
        .argParser(parseDurationFlag)
        .default(DEFAULTS.timeouts.bodyMs, `${DEFAULTS.timeouts.bodyMs / 1000}s`),
    )
    .addOption(upstreamProxyOption())
    .option('--upstream-ca <pem>', UPSTREAM_CA_HELP)
    .addOption(
      new Option('--max-crate-size <size>', 'refuse upstream crates larger than this')
        .argParser(parseSizeFlag)
        .default(DEFAULTS.maxCrateBytes, '1GiB'),
    )
    .addOption(
      new Option(
        '--client-header-timeout <duration>',
        'the request line and headers must arrive within',
      )
        .argParser(parseDurationFlag)
        .default(
          DEFAULTS.clientLimits.headersTimeoutMs,
          `${DEFAULTS.clientLimits.headersTimeoutMs / 1000}s`,
        ),
    )
    .addOption(
      new Option(
        '--client-body-timeout <duration>',
        'the whole request, body included, must arrive within',
      )
        .argParser(parseDurationFlag)
        .default(
          DEFAULTS.clientLimits.requestTimeoutMs,
          `${DEFAULTS.clientLimits.requestTimeoutMs / 1000}s`,
        ),
    )
    .addOption(
      new Option(
        '--client-idle-timeout <duration>',
        'close a connection with no request in progress after',
      )
        .argParser(parseDurationFlag)
        .default(
          DEFAULTS.clientLimits.idleTimeoutMs,
          `${DEFAULTS.clientLimits.idleTimeoutMs / 1000}s`,
        ),
    )
    .addOption(
      new Option(
        '--client-send-timeout <duration>',
        'abort a response the client does not read for',
      )
        .argParser(parseDurationFlag)
        .default(
          DEFAULTS.clientLimits.sendTimeoutMs,
          `${DEFAULTS.clientLimits.sendTimeoutMs / 1000}s`,
        ),
    )
    .addOption(
      new Option('--max-connections <n>', 'open client connections in all')
        .argParser(parseConnectionCount)
        .default(undefined, 'from the open-files limit'),
    )
    .option(
      '--max-connections-per-ip <n>',
      'open client connections from one address (IPv6: one /64)',
      parseConnectionCount,
      DEFAULTS.clientLimits.maxConnectionsPerIp,
    )
    .addOption(
      new Option(
        '--shutdown-timeout <duration>',
        'on SIGTERM, let in-flight downloads and job packages finish for this long',
      )
        .argParser(parseDurationFlag)
        .default(DEFAULTS.shutdownTimeoutMs, `${DEFAULTS.shutdownTimeoutMs / 1000}s`),
    )
    .option(
      '--auth-token-file <path>',
      'require a token from this file (lines "<token> read" or "<token> admin")',
    )
    .option(
      '--max-size <size>',
      'keep the crate cache under this size (500MB, 20GB)',
      parseSizeFlag,
    )
    .option(
      '--expire-after <duration>',
      'remove crates not served for this long (90d)',
      parseDurationFlag,
    )
    .option(
      '--pin <path>',
      'never expire what this Cargo.lock or list names (repeatable)',
      collect,
      [] as string[],
    )
    .addOption(
      new Option('--gc-interval <duration>', 'how often the expiration sweep runs')
        .argParser(parseDurationFlag)
        .default(DEFAULTS.gcIntervalMs, `${DEFAULTS.gcIntervalMs / 1000}s`),
    )
    .option(
      '--verify-every <duration>',
      're-hash cached crates in the background this often',
      parseDurationFlag,
    )
    .option(
      '--min-publish-age <duration>',
      'withhold versions published more recently than this (their pubtime), e.g. 3d',
      parseDurationFlag,
    )
    .option('--allow-young <file>', 'versions exempt from --min-publish-age (name or name@version)')
    .option('--deny <file>', 'crates and versions never served (name, name@version, name@<req>)')
    .option('--keep-removed', 'keep serving versions upstream removed from its index', false)
    .addOption(
      new Option(
        '--withheld-as <how>',
        'serve withheld versions marked yanked, or omit their lines',
      )
        .choices(['yanked', 'omit'] as const)
        .default('yanked' as const),
    )
    .option('-d, --debug', 'more log output: -d info, -dd debug, -ddd trace', increase, 0)
    .addOption(
      new Option('--log-format <format>', 'log line format')
        .choices(['json', 'pretty'] as const)
        .default('json' as const),
    )
    .hook('preAction', applyLayersBeforeServe)
    .action(async (options, command) => {
      await serve(options, settingsSource(command, buildProgram));
    })
    .addCommand(buildPrefetchCommand())
    .addCommand(buildStatsCommand())
    .addCommand(buildGcCommand())
    .addCommand(buildVerifyCommand())
    .addCommand(buildReconcileCommand())
    .addCommand(buildExportCommand())
    .addCommand(buildImportCommand())
    .addCommand(buildConfigCommand(buildProgram));
}

/** `cargo-cacher prefetch <path>...`: fill the storage once and exit (for CI). */
function buildPrefetchCommand() {
  return new Command('prefetch')
    .description(
      'fetch and verify every crate named by Cargo.lock files, name=version lists or directories, and the toolchains of --toolchain channels, then exit',
    )
    .argument('[path...]', 'Cargo.lock (any format), name=version list, or directory to search')
    .option('-i, --index <dir>', 'storage root', defaultStorageDir())
    .addOption(STORAGE_OPTIONS.storage())
    .addOption(STORAGE_OPTIONS.endpoint())
    .addOption(STORAGE_OPTIONS.region())
    .addOption(STORAGE_OPTIONS.pathStyle())
    .option('-s, --sparse <url>', 'upstream sparse index', parseSparseFlag, DEFAULTS.sparseUpstream)
    .option(
      '-u, --upstream <url>',
      "crate download source (default: the upstream index's dl); several comma-separated",
      parseUrlListFlag,
    )
    .option('-t, --threads <n>', 'concurrent downloads', parsePositiveInt, DEFAULTS.threads)
    .addOption(upstreamProxyOption())
    .option('--upstream-ca <pem>', UPSTREAM_CA_HELP)
    .option(
      '--min-publish-age <duration>',
      'do not fetch versions published more recently than this',
      parseDurationFlag,
    )
    .option('--allow-young <file>', 'versions exempt from --min-publish-age')
    .option('--deny <file>', 'crates and versions never fetched: exit 1 when a lock names one')
    .option(
      '--toolchain <channel>',
      'also fetch this toolchain (stable, 1.90.0, nightly-2026-11-01); repeatable',
      collectChannel,
      [] as string[],
    )
    .option(
      '--rustup-upstream <url>',
      'rustup dist server',
      parseRustupUpstream,
      DEFAULTS.rustupUpstream,
    )
    .addOption(
      new Option('--rustup-targets <triples>', 'targets --toolchain fetches for')
        .argParser(parseTargetList)
        .default(undefined, "this machine's"),
    )
    .addOption(
      new Option('--rustup-profile <profile>', 'components --toolchain fetches')
        .choices(['minimal', 'default', 'complete'] as const)
        .default('minimal' as const),
    )
    .option('-d, --debug', 'more log output: -d info, -dd debug, -ddd trace', increase, 0)
    .action(async (paths, options) => {
      await prefetchCommand(paths, options);
    });
}

/** Options of the serve command, as commander parsed them. */
export type ServeOptions = ReturnType<ReturnType<typeof buildProgram>['opts']>;

async function main(): Promise<void> {
  const program = buildProgram();
  program.configureOutput({
    // One line: commander puts its "(Did you mean --port?)" hint on a line of its own.
    outputError: (text, write) => {
      const line = redactUrlsIn(text)
        .replace(/^error: /, 'cargo-cacher: ')
        .trimEnd()
        .replaceAll('\n', ' ');
      write(`${line}\n`);
    },
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    // Expected failures (bad settings, unwritable storage, port in use) are one line, no stack.
    const message = isCacherError(err) ? err.message : describeStartupError(err);
    process.stderr.write(`cargo-cacher: ${redactUrlsIn(message)}\n`);
    process.exitCode = 2;
  }
}

function describeStartupError(err: unknown): string {
  const { code, message } = err as NodeJS.ErrnoException;
  if (code === 'EADDRINUSE') return `the port is already in use (${message})`;
  if (code === 'EACCES') return `permission denied (${message})`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on that address (${message})`;
  return message ?? String(err);
}

if (isMainModule(import.meta.url)) await main();
