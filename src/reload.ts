/**
 * @module
 * Live reload (SIGHUP): the config file, the token file, the policy files, the pin files and the
 * TLS certificate files are read again, and what can change without a restart is put in force:
 * tokens, the supply-chain policy, the index TTL, the log level, the upstream timeouts and the
 * lists of upstreams (`-s`, `-u`), the pins, the certificate and `--shutdown-timeout`. Anything
 * else that changed (port, storage, switching TLS or tokens on or off, …) is logged as needing
 * a restart and keeps its old value.
 *
 * Everything is read and checked before anything changes: a bad config file, token file,
 * policy file, pin file or certificate keeps every previous setting in force and logs why.
 * Requests under way are never touched: admission, the policy and the upstream lists are read
 * per request, and a change of timeouts makes a new upstream client while the old one finishes
 * what it carries.
 */
import type { Http2SecureServer } from 'node:http2';
import { isDeepStrictEqual } from 'node:util';
import type { Config } from './config.ts';
import type { Instance } from './instance.ts';
import { readPins } from './jobs/pins.ts';
import type { AppLogger } from './logger.ts';
import { LivePolicy } from './policy/live-policy.ts';
import type { Policy } from './registry/policy.ts';
import type { TokenTable } from './server/auth.ts';
import { readTlsFiles, type TlsCredentials } from './server/tls.ts';
import { formatDuration } from './units.ts';

/** Config fields (paths) put in force by a reload; every other change needs a restart. */
const LIVE_FIELDS = [
  'logLevel',
  'indexTtlMs',
  'timeouts',
  'sparseUpstream',
  'sparseUpstreams',
  'crateUpstream',
  'crateUpstreams',
  'authTokenFile',
  'policy.minPublishAgeMs',
  'policy.denyFile',
  'policy.allowYoungFile',
  'policy.withheldAs',
  'upkeep.pins',
  'tls.certFile',
  'tls.keyFile',
  'shutdownTimeoutMs',
];

/** What one reload did. */
export interface ReloadReport {
  ok: boolean;
  /** Settings put in force (config paths). */
  applied: string[];
  /** Settings that changed in the file but keep their old value until a restart. */
  restartNeeded: string[];
  /** Why nothing changed, when `ok` is false. */
  error?: string;
}

/** What {@link Reloader} needs. */
export interface ReloaderOptions {
  instance: Instance;
  log: AppLogger;
  /** The settings in force at start. */
  config: Readonly<Config>;
  /** The settings a start would have now (the config file read again); throws when bad. */
  reread: () => Promise<Readonly<Config>>;
}

/** Files read for a reload, before anything changes. */
interface Prepared {
  tokens: TokenTable | undefined;
  policy: Policy | undefined;
  pins: Set<string>;
  tls: TlsCredentials | undefined;
}

/** Applies reloads one at a time; see the module comment. */
export class Reloader {
  readonly #options: ReloaderOptions;
  #config: Readonly<Config>;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ReloaderOptions) {
    this.#options = options;
    this.#config = options.config;
  }

  /** The settings in force now (the restart-only ones as they were at start). */
  get config(): Readonly<Config> {
    return this.#config;
  }

  /** Reads everything again and applies what it can; never throws (a failure is logged). */
  reload(): Promise<ReloadReport> {
    const run = this.#queue.then(() => this.#reload());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<ReloadReport> {
    const { log } = this.#options;
    log.notice('SIGHUP: reloading the configuration');
    let next: Readonly<Config>;
    let prepared: Prepared;
    try {
      next = await this.#options.reread();
      prepared = await this.#prepare(next);
    } catch (err) {
      const error = (err as Error).message;
      log.error(`reload failed: ${error}; the previous settings stay in force`);
      return { ok: false, applied: [], restartNeeded: [], error };
    }
    const { live, restart } = this.#classify(next);
    const before = this.#config;
    this.#config = this.#apply(next, prepared, live);
    this.#logOutcome(before, live, restart);
    return { ok: true, applied: live, restartNeeded: restart };
  }

  /** Reads every file the new settings name; throws when one is bad. */
  async #prepare(next: Readonly<Config>): Promise<Prepared> {
    const { instance } = this.#options;
    const tokensOn = instance.tokens !== undefined && next.authTokenFile !== undefined;
    const tlsOn = this.#config.tls !== undefined && next.tls !== undefined;
    const policy = instance.deps.policy;
    return {
      tokens: tokensOn ? instance.tokens?.read(next.authTokenFile) : undefined,
      policy: policy ? await LivePolicy.read(this.#livePolicySettings(next)) : undefined,
      pins: await readPins([...next.prefetch, ...next.upkeep.pins]),
      tls: tlsOn && next.tls ? await readTlsFiles(next.tls) : undefined,
    };
  }

  /** The new policy settings, with `--keep-removed` (fixed at start) as it is. */
  #livePolicySettings(next: Readonly<Config>): Config['policy'] {
    return { ...next.policy, keepRemoved: this.#config.policy.keepRemoved };
  }

  /** Changed config paths, split into those a reload applies and those that need a restart. */
  #classify(next: Readonly<Config>): { live: string[]; restart: string[] } {
    const current = this.#config;
    const paths = changedPaths(current, next, allPaths(current, next));
    // `tls` unset on one side and `tls.certFile` set on the other: the leaves say it.
    const changed = paths.filter((path) => !paths.some((other) => other.startsWith(`${path}.`)));
    const onOff = (a: unknown, b: unknown) => (a === undefined) !== (b === undefined);
    const live: string[] = [];
    const restart: string[] = [];
    for (const path of changed) {
      const switchedOnOrOff =
        (path.startsWith('tls.') && onOff(current.tls, next.tls)) ||
        (path === 'authTokenFile' && onOff(current.authTokenFile, next.authTokenFile)) ||
        (path.startsWith('sparseUpstream') &&
          (current.sparseUpstreams.length === 0) !== (next.sparseUpstreams.length === 0));
      const isLive = LIVE_FIELDS.some((field) => path === field || path.startsWith(`${field}.`));
      (isLive && !switchedOnOrOff ? live : restart).push(path);
    }
    return { live, restart };
  }

  /** Puts the prepared settings in force; returns the config now in force. */
  #apply(next: Readonly<Config>, prepared: Prepared, live: string[]): Readonly<Config> {
    const { instance, log } = this.#options;
    const current = this.#config;
    const changed = (field: string) =>
      live.some((path) => path === field || path.startsWith(`${field}.`));
    log.level = next.logLevel;
    instance.deps.index.setTtl(next.indexTtlMs);
    instance.http.setTimeouts(next.timeouts);
    if (changed('sparseUpstreams')) instance.deps.sparse?.setBaseUrls(next.sparseUpstreams);
    if (changed('crateUpstreams'))
      instance.deps.registryConfig.setCrateUpstreams(next.crateUpstreams);
    if (prepared.tokens && next.authTokenFile !== undefined) {
      instance.tokens?.replace(next.authTokenFile, prepared.tokens);
      log.notice({ tokens: prepared.tokens.entries.length }, 'token file reloaded');
    }
    const policy = instance.deps.policy;
    const policySettings = this.#livePolicySettings(next);
    // Replacing rebuilds the git index's overlay: only when the policy did change.
    if (
      policy &&
      prepared.policy &&
      !(
        isDeepStrictEqual(policy.settings, policySettings) &&
        isDeepStrictEqual(policy.current(), prepared.policy)
      )
    ) {
      policy.replace(policySettings, prepared.policy);
    }
    replacePins(instance, prepared.pins);
    if (prepared.tls) {
      (instance.app.server as unknown as Http2SecureServer).setSecureContext(prepared.tls);
      log.notice({ cert: next.tls?.certFile }, 'TLS certificate reloaded');
    }
    return mergeLive(current, next, live);
  }

  #logOutcome(before: Readonly<Config>, live: string[], restart: string[]): void {
    const { log } = this.#options;
    for (const path of restart) {
      log.warn({ setting: path }, `reload: ${path} changed; it takes effect after a restart`);
    }
    const changes = Object.fromEntries(
      live.map((path) => [
        path,
        {
          from: describeSetting(path, get(before, path)),
          to: describeSetting(path, get(this.#config, path)),
        },
      ]),
    );
    log.notice(
      { changed: live, changes, restartNeeded: restart },
      live.length === 0
        ? 'reload done: no setting changed (files read again)'
        : `reload done: ${live.join(', ')} changed`,
    );
  }
}

/** The pins in force become `pins`: the set expiration reads, and the catalogue's flags. */
function replacePins(instance: Instance, pins: Set<string>): void {
  instance.pinned.clear();
  for (const label of pins) instance.pinned.add(label);
  instance.catalogue.setPins(instance.pinned);
}

/**
 * The config in force after a reload: `current`, with the live paths taken from `next` (the
 * restart-only ones stay as they are, so the next reload still reports them).
 */
function mergeLive(
  current: Readonly<Config>,
  next: Readonly<Config>,
  live: string[],
): Readonly<Config> {
  const merged = structuredClone(current) as Config;
  for (const path of live) set(merged, path, structuredClone(get(next, path)));
  return Object.freeze(merged);
}

/** Every leaf path of either config (`policy.denyFile`, `timeouts.connectMs`, …). */
function allPaths(a: object, b: object): string[] {
  const paths = new Set<string>();
  const walk = (value: unknown, prefix: string) => {
    if (isPlainObject(value)) {
      for (const [key, inner] of Object.entries(value))
        walk(inner, prefix ? `${prefix}.${key}` : key);
    } else if (prefix) {
      paths.add(prefix);
    }
  };
  walk(a, '');
  walk(b, '');
  return [...paths];
}

function changedPaths(a: object, b: object, paths: string[]): string[] {
  return paths.filter((path) => !isDeepStrictEqual(get(a, path), get(b, path)));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function get(value: object, path: string): unknown {
  let current: unknown = value;
  for (const key of path.split('.')) {
    if (!isPlainObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

function set(value: object, path: string, leaf: unknown): void {
  const keys = path.split('.');
  let current = value as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(current[key])) current[key] = {};
    current = current[key] as Record<string, unknown>;
  }
  current[keys.at(-1) as string] = leaf;
}

/**
 * A setting's value for a log line: durations in the flags' form, numbers and words as they
 * are; a string or list (a URL, a path) only as "changed", since a URL may carry credentials.
 */
function describeSetting(path: string, value: unknown): unknown {
  if (typeof value === 'number') return /Ms$/.test(path) ? formatDuration(value) : value;
  if (typeof value === 'boolean' || value === undefined) return value ?? 'unset';
  if (path === 'logLevel' || path === 'policy.withheldAs') return value;
  return '(set)';
}
