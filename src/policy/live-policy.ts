/**
 * @module
 * The supply-chain policy in force: `--min-publish-age`, and the `--deny` and `--allow-young`
 * files, re-read when they change (polled every second), with no restart. A file that fails to
 * parse at startup stops the start with one line naming the file and line; one that fails later
 * is reported the same way and the previous version stays in force (a half-saved deny list
 * never lets through what the last good one denied). A reload (SIGHUP) reads them again too,
 * with settings that may have changed (src/reload.ts: {@link LivePolicy.read}, then
 * {@link LivePolicy.replace}).
 */

import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { PolicySettings } from '../config.ts';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { EMPTY_POLICY, type Policy, parseAllowYoung, parseDenyList } from '../registry/policy.ts';

/** How often the files are looked at for changes. */
const POLL_MS = 1000;

/** The policy files and the policy built from them. */
export class LivePolicy {
  #settings: Readonly<PolicySettings>;
  readonly #log: AppLogger;
  #policy: Policy;
  #generation = 0;
  #watched: string[] = [];
  readonly #listeners: (() => void)[] = [];

  private constructor(settings: Readonly<PolicySettings>, log: AppLogger, policy: Policy) {
    this.#settings = settings;
    this.#log = log;
    this.#policy = policy;
  }

  /** Reads the files; a missing or malformed one is a configuration error. */
  static async load(settings: Readonly<PolicySettings>, log: AppLogger): Promise<LivePolicy> {
    try {
      return new LivePolicy(settings, log, await readPolicy(settings));
    } catch (err) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG((err as Error).message, { cause: err });
    }
  }

  /** The settings in force (a reload may change them: {@link replace}). */
  get settings(): Readonly<PolicySettings> {
    return this.#settings;
  }

  /**
   * Reads the files `settings` name without changing anything: what {@link replace} puts in
   * force. Throws with the file and line of a bad one.
   */
  static async read(settings: Readonly<PolicySettings>): Promise<Policy> {
    return readPolicy(settings);
  }

  /**
   * Puts new settings and the policy read from them in force (a reload: SIGHUP), and watches
   * the files they name.
   */
  replace(settings: Readonly<PolicySettings>, policy: Policy): void {
    const watching = this.#watched.length > 0;
    this.close();
    this.#settings = settings;
    this.#put(policy);
    if (watching) this.start();
  }

  /** The policy in force now. */
  current(): Policy {
    return this.#policy;
  }

  /** Grows by one at every reload that changed the policy: derived answers key on it. */
  get generation(): number {
    return this.#generation;
  }

  /** True when the policy can filter nothing (no cooldown, no deny file). */
  get inactive(): boolean {
    return this.settings.minPublishAgeMs === undefined && this.settings.denyFile === undefined;
  }

  /** Calls `listener` after every reload that took (the git index is rebuilt then). */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Starts watching the files. */
  start(): void {
    for (const file of [this.#settings.denyFile, this.#settings.allowYoungFile]) {
      if (file === undefined) continue;
      watchFile(file, { interval: POLL_MS, persistent: false }, () => {
        void this.reload();
      });
      this.#watched.push(file);
    }
  }

  /** Re-reads the files; on an error the previous policy stays and the error is logged. */
  async reload(): Promise<boolean> {
    try {
      this.#put(await readPolicy(this.#settings));
      return true;
    } catch (err) {
      this.#log.error(`${(err as Error).message}; the previous policy stays in force`);
      return false;
    }
  }

  #put(policy: Policy): void {
    this.#policy = policy;
    this.#generation += 1;
    for (const listener of this.#listeners) listener();
    this.#log.notice(
      { deny: policy.deny.length, allowYoung: policy.allowYoung.length },
      'policy files reloaded',
    );
  }

  close(): void {
    for (const file of this.#watched) unwatchFile(file);
    this.#watched = [];
  }
}

async function readPolicy(settings: Readonly<PolicySettings>): Promise<Policy> {
  const deny = settings.denyFile
    ? parseDenyList(await readList(settings.denyFile, '--deny'), settings.denyFile)
    : [];
  const allowYoung = settings.allowYoungFile
    ? parseAllowYoung(
        await readList(settings.allowYoungFile, '--allow-young'),
        settings.allowYoungFile,
      )
    : [];
  return {
    ...EMPTY_POLICY,
    ...(settings.minPublishAgeMs !== undefined && { minPublishAgeMs: settings.minPublishAgeMs }),
    withheldAs: settings.withheldAs,
    deny,
    allowYoung,
  };
}

async function readList(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(
      `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}
