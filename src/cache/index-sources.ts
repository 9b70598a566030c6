/**
 * @module
 * Index sources besides the upstream sparse index: the git mirror's files, and a source that
 * falls back to them when the sparse upstream fails. This is how a git-only upstream (many
 * private registries) still serves modern cargo, and how downloads find checksums then.
 */
import { Errors, isCacherError } from '../errors.ts';
import type { GitMirror } from '../git/git-mirror.ts';
import type { AppLogger } from '../logger.ts';
import type { FetchOptions, IndexFetch, Validators } from '../upstream/sparse-index.ts';
import type { IndexSource } from './index-cache.ts';

/** Reads index files from upstream's tree in the git mirror (blob id as validator). */
export class GitIndexSource implements IndexSource {
  readonly local = true;
  readonly #mirror: GitMirror;

  constructor(mirror: GitMirror) {
    this.#mirror = mirror;
  }

  /**
   * False while no upstream index is mirrored: an air-gapped instance serves a git index built
   * from its held files, and its cached index files are then the only ones there are.
   */
  available(): boolean {
    return this.#mirror.hasUpstreamIndex;
  }

  async fetch(path: string, validators: Validators = {}): Promise<IndexFetch> {
    if (!this.#mirror.ready) {
      throw Errors.CARGO_CACHER_GIT_NOT_READY(
        'the git index is still being cloned; retry shortly',
        {
          retryAfter: 10,
        },
      );
    }
    const file = await this.#mirror.readUpstreamFile(path);
    if (!file) return { kind: 'not-found' };
    const etag = `"git-${file.blobId}"`;
    if (validators.etag === etag) return { kind: 'not-modified' };
    return { kind: 'modified', body: file.body, validators: { etag } };
  }
}

/**
 * Asks the primary source first; when it fails (unreachable, 5xx) and nothing is cached, answers
 * from the fallback if that is ready. A 404 from the primary is an answer, not a failure.
 */
export class FallbackIndexSource implements IndexSource {
  readonly #primary: IndexSource;
  readonly #fallback: GitIndexSource;
  readonly #mirror: GitMirror;
  readonly #log: AppLogger;

  constructor(primary: IndexSource, mirror: GitMirror, log: AppLogger) {
    this.#primary = primary;
    this.#mirror = mirror;
    this.#fallback = new GitIndexSource(mirror);
    this.#log = log;
  }

  async fetch(path: string, validators?: Validators, options?: FetchOptions): Promise<IndexFetch> {
    try {
      return await this.#primary.fetch(path, validators, options);
    } catch (err) {
      // With a cached copy (validators given) the cache serves it stale: the git mirror may be
      // older, and a path it lacks would even delete the cached file.
      if (validators !== undefined || !this.#mirror.ready || !isCacherError(err)) throw err;
      this.#log.info(
        { path, code: err.code },
        'sparse upstream failed; answering from the git mirror',
      );
      return this.#fallback.fetch(path);
    }
  }
}
