/**
 * @module
 * Upstream's `config.json` (cached like any index file) and the download template derived
 * from it, plus the `config.json` this proxy serves.
 */
import { Errors } from '../errors.ts';
import {
  DOWNLOAD_ROUTE_BASE,
  parseRegistryConfig,
  type RegistryConfigWire,
  rewriteRegistryConfig,
} from '../registry/registry-config.ts';
import type { IndexCache, IndexOutcome } from './index-cache.ts';

/** The path of the registry configuration below the index root. */
export const CONFIG_PATH = 'config.json';

/** Reads upstream's registry configuration through the index cache. */
export class RegistryConfigService {
  readonly #index: IndexCache;
  #crateUpstreams: readonly string[];

  /** `crateUpstream`: `-u`, one template or several equivalent ones (tried in order). */
  constructor(index: IndexCache, crateUpstream: string | readonly string[] | undefined) {
    this.#index = index;
    this.#crateUpstreams =
      typeof crateUpstream === 'string' ? [crateUpstream] : (crateUpstream ?? []);
  }

  /** Downloads from now on use these templates (a reload changed `-u`); `[]`: upstream's `dl`. */
  setCrateUpstreams(crateUpstreams: readonly string[]): void {
    this.#crateUpstreams = crateUpstreams;
  }

  /** Upstream's config.json, parsed, with how it was obtained. */
  async upstreamConfig(): Promise<{ config: RegistryConfigWire; outcome: IndexOutcome }> {
    const lookup = await this.#index.get(CONFIG_PATH);
    if (!lookup.found) {
      throw Errors.CARGO_CACHER_UPSTREAM_INVALID('upstream index has no config.json');
    }
    try {
      return { config: parseRegistryConfig(lookup.file.body), outcome: lookup.outcome };
    } catch (cause) {
      throw Errors.CARGO_CACHER_UPSTREAM_INVALID(
        `upstream config.json is malformed: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /** The template crates are downloaded from: `-u` when given, else upstream's `dl`. */
  async downloadTemplate(): Promise<string> {
    return (await this.downloadTemplates())[0] as string;
  }

  /** Every template to try, in order: the `-u` list when given, else upstream's `dl`. */
  async downloadTemplates(): Promise<readonly string[]> {
    if (this.#crateUpstreams.length > 0) return this.#crateUpstreams;
    return [(await this.upstreamConfig()).config.dl];
  }

  /**
   * The `config.json` served to cargo at `publicUrl`: upstream's with `dl` (and `api`, when
   * upstream has one) pointing here. With no upstream config at all (offline before the first
   * fetch) a minimal one is served.
   */
  async servedConfig(
    publicUrl: string,
    options: { authRequired?: boolean } = {},
  ): Promise<{ body: Buffer; outcome: IndexOutcome }> {
    const downloadBase = publicUrl + DOWNLOAD_ROUTE_BASE;
    // With access control on, cargo must send its token on every request (Cargo Book,
    // registry-index: "auth-required ... indicates that this is a private registry").
    const auth = options.authRequired ? { 'auth-required': true } : {};
    if (!this.#index.canReachUpstream && !(await this.#index.peek(CONFIG_PATH))) {
      return { body: Buffer.from(JSON.stringify({ dl: downloadBase, ...auth })), outcome: 'hit' };
    }
    const { config, outcome } = await this.upstreamConfig();
    const served = { ...rewriteRegistryConfig(config, publicUrl), ...auth };
    return { body: Buffer.from(JSON.stringify(served)), outcome };
  }
}
