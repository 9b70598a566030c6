/**
 * @module
 * The local mirror of the upstream git index: a bare repository under the storage root, fetched
 * in the background (the server answers from the first second), refreshed every `-r`, with the
 * {@link buildOverlayCommit overlay commit} on top. A failed refresh keeps the last good index,
 * rebuilt for the upstream outage (the filter then lists only what is held); a failed first clone
 * is retried with backoff until it succeeds. With `--offline` and no upstream index mirrored
 * ever, the index served is built from the index files this instance holds (`local-index.ts`).
 */
import { access, mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppLogger } from '../logger.ts';
import { redactUrl, redactUrlsIn } from '../upstream/redact-url.ts';
import { backoffMs } from '../upstream/retry-policy.ts';
import { gitText, runGit } from './git-command.ts';
import { gitCertificateHint } from './git-network.ts';
import { buildLocalIndexCommit, type IndexTreeFile } from './local-index.ts';
import {
  buildOverlayCommit,
  localIndexConfig,
  SERVED_REF,
  servedCommit,
  UPSTREAM_REF,
} from './overlay.ts';
import type { OverlayFilter, OverlayState } from './overlay-filter.ts';
import { removeStaleGitLocks } from './stale-locks.ts';

/** What changed in one refresh (the mirror job queues a pass for what was added). */
export interface GitRefresh {
  /** Upstream's HEAD before; `undefined` for the first index this mirror serves. */
  previousUpstream: string | undefined;
  upstream: string;
  served: string;
}

/** Options of {@link GitMirror}. */
export interface GitMirrorOptions {
  /** The bare repository, e.g. `<storage>/git/index.git`. */
  gitDir: string;
  /** Anything `git fetch` accepts: URL, path or `file://`. */
  upstreamUrl: string;
  refreshMs: number;
  /** Never fetch: serve the mirror as it is (`--offline`). */
  offline?: boolean;
  log: AppLogger;
  /**
   * The view of the index files served (the supply-chain policy, the index of what is held),
   * made anew for each overlay: it reads the policy, the clock and what is held then, and is
   * told whether upstream is reachable. `undefined` when no view changes anything.
   */
  filter?: (state: OverlayState) => OverlayFilter | undefined;
  /**
   * The index files this instance holds: served as the git index when `--offline` finds no
   * upstream index mirrored.
   */
  localIndex?: () => AsyncIterable<IndexTreeFile>;
  /**
   * Environment of the upstream fetches: the outbound proxy and the CA bundle
   * (`git-network.ts`). Only fetches get it; nothing else git runs here leaves the machine.
   */
  fetchEnv?: Record<string, string>;
}

/** Longest wait between retries of a failing first clone. */
const MAX_BACKOFF_MS = 5 * 60_000;
const PROGRESS_LOG_MS = 5_000;

/** The git index mirror. */
export class GitMirror {
  readonly gitDir: string;
  readonly #options: GitMirrorOptions;
  readonly #listeners: ((refresh: GitRefresh) => void)[] = [];
  readonly #stop = new AbortController();
  #republishTimer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #refreshing: Promise<boolean> | undefined;
  #ready = false;
  #lastSuccessAt: number | undefined;
  #lastError: string | undefined;
  #upstreamHead: string | undefined;
  /** True while refreshes fail after a success: the overlay is built for the outage. */
  #upstreamDown = false;
  #publicUrl = '';

  constructor(options: GitMirrorOptions) {
    this.#options = options;
    this.gitDir = options.gitDir;
  }

  /** True once a served HEAD exists (from this run or an earlier one). */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * False with `--offline` and while refreshes fail: the index served is then built for the
   * outage (through the filter, which lists only what is held).
   */
  get upstreamReachable(): boolean {
    return !this.#options.offline && !this.#upstreamDown;
  }

  /** True when an upstream index was mirrored (false for an index built from held files). */
  get hasUpstreamIndex(): boolean {
    return this.#upstreamHead !== undefined;
  }

  /** Status for /health and the dashboard. */
  status() {
    return {
      ready: this.#ready,
      upstream: redactUrl(this.#options.upstreamUrl),
      lastSuccessAt: this.#lastSuccessAt,
      lastError: this.#lastError,
      upstreamHead: this.#upstreamHead,
    };
  }

  /** Subscribes to successful refreshes that changed upstream's HEAD. */
  onRefresh(listener: (refresh: GitRefresh) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Starts the background clone/refresh loop. `publicUrl` is what the served config.json's
   * `dl` points at; it is known only once the server listens.
   */
  async start(publicUrl: string): Promise<void> {
    this.#publicUrl = publicUrl;
    await this.#initRepository();
    this.#upstreamHead = await this.#revParse(UPSTREAM_REF);
    // An earlier run's overlay may name another public URL: rebuild it before serving, so a
    // restart while upstream is unreachable does not send downloads to the old address.
    if (this.#upstreamHead !== undefined) await this.#switchOverlay();
    this.#ready = (await servedCommit(this.gitDir)) !== undefined;
    this.#loop = this.#runLoop();
  }

  /** Stops the loop, kills a running git fetch and waits for it to end. */
  async close(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#republishTimer);
    await this.#loop;
  }

  /**
   * Rebuilds the served overlay without fetching: the policy changed, or a withheld version
   * came of age. Shares the refresh's single flight (a refresh rebuilds the overlay as well).
   */
  republish(): Promise<boolean> {
    this.#refreshing ??= this.#republishOnce().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #republishOnce(): Promise<boolean> {
    if (!this.#ready) return false;
    try {
      await this.#switchOverlay();
      return true;
    } catch (err) {
      this.#options.log.warn({ err }, 'could not rebuild the git index for the policy');
      return false;
    }
  }

  /** Fetches upstream and rebuilds the overlay now; resolves false (logged) when it failed. */
  refresh(): Promise<boolean> {
    this.#refreshing ??= this.#refreshOnce().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Reads a file of upstream's tree (not the overlay), or `undefined` when absent. */
  async readUpstreamFile(path: string): Promise<{ body: Buffer; blobId: string } | undefined> {
    if (this.#upstreamHead === undefined) return undefined;
    const spec = `${this.#upstreamHead}:${path}`;
    const blobId = await this.#revParse(spec);
    if (blobId === undefined) return undefined;
    const { stdout } = await runGit(this.gitDir, ['cat-file', 'blob', blobId]);
    return { body: stdout, blobId };
  }

  async #runLoop(): Promise<void> {
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      const ok = await this.refresh();
      if (this.#options.offline) return;
      failures = ok ? 0 : failures + 1;
      const delay = this.#ready
        ? this.#options.refreshMs
        : cloneBackoffMs(failures, this.#options.refreshMs);
      try {
        await sleep(delay, undefined, { signal: this.#stop.signal });
      } catch {
        return; // aborted by close()
      }
    }
  }

  async #refreshOnce(): Promise<boolean> {
    const first = !this.#ready;
    try {
      // Until an index was first served, listeners (the full mirror) have seen nothing: a clone
      // fetched by a run that died before serving it counts as new.
      const previousUpstream = first ? undefined : this.#upstreamHead;
      if (!this.#options.offline) {
        await this.#fetchUpstream(first);
      } else if (first && !this.#options.localIndex && this.#upstreamHead === undefined) {
        throw new Error('no git index was mirrored yet and --offline forbids fetching it');
      }
      this.#upstreamDown = false;
      const upstream = await this.#revParse(UPSTREAM_REF);
      const { served, changed } = await this.#switchOverlay(upstream);
      // Only now: status() shows an upstream HEAD once the index built on it is served.
      this.#upstreamHead = upstream;
      this.#ready = true;
      this.#lastSuccessAt = Date.now();
      this.#lastError = undefined;
      if (upstream !== undefined) {
        this.#announce(first, { previousUpstream, upstream, served }, changed);
      } else {
        this.#options.log.notice({ served }, 'git index built from the index files held');
      }
      return true;
    } catch (err) {
      if (this.#stop.signal.aborted) return false; // close() killed the fetch
      this.#lastError = describeFetchFailure(err as Error);
      const what = first
        ? 'git index clone failed (will retry)'
        : 'git index refresh failed; still serving the last good index';
      this.#options.log.notice(
        { upstream: redactUrl(this.#options.upstreamUrl) },
        `${what}: ${this.#lastError}`,
      );
      if (!first) await this.#onUpstreamDown();
      return false;
    }
  }

  /** The first failed refresh after a success rebuilds the index served for the outage. */
  async #onUpstreamDown(): Promise<void> {
    if (this.#upstreamDown) return;
    this.#upstreamDown = true;
    try {
      await this.#switchOverlay();
    } catch (err) {
      this.#options.log.warn({ err }, 'could not rebuild the git index for the upstream outage');
    }
  }

  /**
   * Builds the overlay on the fetched upstream HEAD (or, offline with none, the index of the
   * files held) and points the served ref at it.
   */
  async #switchOverlay(
    upstream = this.#upstreamHead,
  ): Promise<{ served: string; changed: boolean }> {
    const filter = this.#options.filter?.({ upstreamReachable: this.upstreamReachable });
    const served =
      upstream === undefined && this.#options.localIndex
        ? await buildLocalIndexCommit(
            this.gitDir,
            localIndexConfig(this.#publicUrl),
            filteredFiles(this.#options.localIndex(), filter),
          )
        : await buildOverlayCommit(this.gitDir, this.#publicUrl, filter?.filter);
    this.#scheduleRepublish(filter?.changesAt());
    const current = await servedCommit(this.gitDir);
    if (served !== current) {
      // One atomic ref update: a client sees the old HEAD or the new one, never a mix.
      await runGit(this.gitDir, ['update-ref', SERVED_REF, served, ...(current ? [current] : [])]);
    }
    return { served, changed: served !== current };
  }

  /** Rebuilds the overlay when a withheld version comes of age (at most a day ahead, re-armed). */
  #scheduleRepublish(at: number | undefined): void {
    clearTimeout(this.#republishTimer);
    if (at === undefined || this.#stop.signal.aborted) return;
    const delay = Math.min(Math.max(0, at - Date.now()), 86_400_000);
    this.#republishTimer = setTimeout(() => {
      this.republish().catch(() => undefined);
    }, delay);
    this.#republishTimer.unref();
  }

  #announce(first: boolean, refresh: GitRefresh, changed: boolean): void {
    const { log } = this.#options;
    if (first) log.notice({ served: refresh.served }, 'git index ready');
    else log.info({ served: refresh.served, changed }, 'git index refreshed');
    if (refresh.previousUpstream === refresh.upstream) return;
    for (const listener of this.#listeners) listener(refresh);
  }

  async #fetchUpstream(first: boolean): Promise<void> {
    let lastLog = 0;
    // crates.io squashes its history from time to time: the forced refspec accepts that.
    await runGit(
      this.gitDir,
      [
        'fetch',
        '--force',
        '--no-tags',
        '--progress',
        this.#options.upstreamUrl,
        `+HEAD:${UPSTREAM_REF}`,
      ],
      {
        signal: this.#stop.signal,
        ...(this.#options.fetchEnv && { env: this.#options.fetchEnv }),
        onStderrLine: (line) => {
          const now = Date.now();
          if (!first || now - lastLog < PROGRESS_LOG_MS) return;
          lastLog = now;
          this.#options.log.notice({ progress: line }, 'cloning the git index');
        },
      },
    );
  }

  async #initRepository(): Promise<void> {
    try {
      await access(`${this.gitDir}/HEAD`);
      const removed = await removeStaleGitLocks(this.gitDir);
      if (removed > 0) {
        this.#options.log.notice(
          { removed },
          'git index: removed lock files and temporary packs left by an interrupted git',
        );
      }
    } catch {
      await mkdir(this.gitDir, { recursive: true });
      await runGit(this.gitDir, ['init', '--bare', '--quiet']);
    }
    await runGit(this.gitDir, ['symbolic-ref', 'HEAD', SERVED_REF]);
    // A client that read the refs before a refresh may still ask for the old commit.
    await runGit(this.gitDir, ['config', 'uploadpack.allowAnySHA1InWant', 'true']);
    await runGit(this.gitDir, ['config', 'core.logAllRefUpdates', 'false']);
  }

  async #revParse(spec: string): Promise<string | undefined> {
    try {
      return (await gitText(this.gitDir, ['rev-parse', '--verify', '--quiet', spec])) || undefined;
    } catch {
      return undefined;
    }
  }
}

/**
 * git's last words, with credentials in any URL hidden and, for a certificate it does not
 * trust, the flag that fixes it: one line.
 */
function describeFetchFailure(err: Error): string {
  const message = redactUrlsIn(err.message);
  const hint = gitCertificateHint(message);
  return hint ? `${message}; ${hint}` : message;
}

/** The files with the filter applied: replaced, left as they are, or left out (`null`). */
async function* filteredFiles(
  files: AsyncIterable<IndexTreeFile>,
  filter: OverlayFilter | undefined,
): AsyncGenerator<IndexTreeFile> {
  for await (const file of files) {
    const replaced = filter ? filter.filter(file.path, file.body) : undefined;
    if (replaced === null) continue;
    yield replaced === undefined ? file : { path: file.path, body: replaced };
  }
}

/**
 * The wait after `failures` failed first clones: 1 s, 2 s, 4 s … capped by the refresh interval
 * and five minutes (the one backoff of retry-policy.ts). No jitter: one mirror per instance.
 */
export function cloneBackoffMs(failures: number, refreshMs: number): number {
  const capMs = Math.min(refreshMs, MAX_BACKOFF_MS);
  return backoffMs(failures - 1, { baseMs: 1000, capMs, jitter: false });
}
