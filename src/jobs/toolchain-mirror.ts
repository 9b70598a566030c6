/**
 * @module
 * The toolchain mirror (`--rustup-mirror stable,1.90.0,nightly-2026-11-01`): a background job
 * that makes the cache hold, for each channel, its channel manifest pair and the archives of the
 * `--rustup-profile` components for every `--rustup-targets` target, before any client asks.
 * Each pass reads the channels' manifests through the toolchain cache (so an undated one is
 * revalidated, and a new stable release is followed), skips what is held already (a pass after
 * an interruption resumes where the last stopped), fetches the rest `-t` at a time with the jobs'
 * retry policy, and pins what the channels name now, so eviction never takes it (and files of a
 * release the channel moved on from become evictable). Passes run at startup and every `-r`;
 * `cargo-cacher prefetch --toolchain` runs one and exits.
 */
import type { Catalogue } from '../cache/catalogue.ts';
import type { ToolchainCache } from '../cache/toolchain-cache.ts';
import type { RustupProfile } from '../config.ts';
import type { AppLogger } from '../logger.ts';
import { type ArchiveRef, archivesForProfile } from '../registry/channel-manifest.ts';
import { manifestPathOfChannel, pairOf, toolchainKey } from '../registry/rustup-paths.ts';
import { JOB_RETRY, type JobRetry, retryJob } from '../upstream/retry-policy.ts';
import type { Job, JobRegistry, PackageReport } from './job.ts';
import { reportProgress } from './progress.ts';
import { runPool } from './worker-pool.ts';

/** What a {@link ToolchainMirror} needs. */
export interface ToolchainMirrorDeps {
  toolchains: ToolchainCache;
  catalogue: Catalogue;
  jobs: JobRegistry;
  /** Channels as rustup names them. */
  channels: readonly string[];
  targets: readonly string[];
  profile: RustupProfile;
  threads: number;
  log: AppLogger;
  retry?: Readonly<JobRetry>;
  /** A progress bar (a terminal) instead of log lines. */
  tty?: boolean;
  /**
   * Pin what the channels name (the server's mirror). A one-shot prefetch leaves the pins of the
   * server that may run on the same storage alone.
   */
  pin: boolean;
}

/** What one channel's manifest gave a pass. */
interface ChannelFiles {
  /** The manifest and its sidecar (keys), pinned with the archives. */
  keys: string[];
  archives: ArchiveRef[];
}

/** Runs toolchain mirror passes, one at a time. */
export class ToolchainMirror {
  readonly #deps: ToolchainMirrorDeps;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #again = false;
  #interval: NodeJS.Timeout | undefined;
  #lastJob: Job | undefined;

  constructor(deps: ToolchainMirrorDeps) {
    this.#deps = deps;
  }

  /** A pass every `ms` (the `-r` interval): a channel's new release is followed. */
  every(ms: number): void {
    clearInterval(this.#interval);
    this.#interval = setInterval(() => this.requestPass(), ms);
    this.#interval.unref();
  }

  /** Runs a pass now, or once more after the running one. */
  requestPass(): void {
    if (this.#stop.signal.aborted) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#passes().finally(() => {
      this.#running = undefined;
    });
    this.#running.catch(() => undefined);
  }

  /** Runs one pass to its end (the prefetch command). */
  async runOnce(): Promise<Job> {
    return this.#runPass();
  }

  /** Resolves when no pass is running or asked for. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** The job of the last pass that ended. */
  get lastJob(): Job | undefined {
    return this.#lastJob;
  }

  /** Stops taking new files; the ones under way finish. */
  async close(): Promise<void> {
    this.#stop.abort();
    clearInterval(this.#interval);
    await this.idle();
  }

  async #passes(): Promise<void> {
    do {
      this.#again = false;
      try {
        this.#lastJob = await this.#runPass();
      } catch (err) {
        this.#deps.log.error({ err }, 'toolchain mirror pass failed');
      }
    } while (this.#again && !this.#stop.signal.aborted);
  }

  async #runPass(): Promise<Job> {
    const { jobs, log, channels, profile, targets } = this.#deps;
    const job = jobs.create(
      'mirror',
      `toolchain mirror of ${channels.join(', ')} (${profile} profile, ${targets.join(', ')})`,
    );
    job.expect(channels.length);
    const stopProgress = reportProgress(job, log, this.#deps.tty ?? false);
    try {
      const pinned: string[] = [];
      const archives = new Map<string, ArchiveRef>();
      let unread = 0;
      for (const channel of channels) {
        const files = await this.#readChannel(job, channel);
        if (!files) {
          unread++;
          continue;
        }
        pinned.push(...files.keys);
        for (const archive of files.archives) archives.set(archive.path, archive);
      }
      for (const path of archives.keys()) pinned.push(toolchainKey(path));
      // Pinned before the downloads, so a file stored now is pinned as it is recorded. A channel
      // whose manifest could not be read keeps the pins of the last pass that read them all.
      if (this.#deps.pin && unread === 0) this.#deps.catalogue.setToolchainPins(pinned);
      job.expect(archives.size);
      await runPool(
        archives.values(),
        this.#deps.threads,
        async (archive) => job.record(await this.#store(archive)),
        this.#stop.signal,
      );
      job.finish(this.#stop.signal.aborted ? new Error('stopped before the end') : undefined);
    } catch (err) {
      job.finish(err);
    } finally {
      stopProgress();
    }
    return job;
  }

  /** A channel's manifest (revalidated when due) and the archives the profile needs from it. */
  async #readChannel(job: Job, channel: string): Promise<ChannelFiles | undefined> {
    const path = manifestPathOfChannel(channel);
    try {
      const { manifest, outcome } = await retryJob(
        () => this.#deps.toolchains.manifest(path),
        this.#deps.retry ?? JOB_RETRY,
        this.#stop.signal,
      );
      const archives = archivesForProfile(manifest, this.#deps.profile, this.#deps.targets);
      job.record({
        name: channel,
        version: manifest.date,
        status: outcome === 'miss' ? 'fetched' : 'cached',
        reason: `${path}: ${archives.length} archives for the ${this.#deps.profile} profile`,
      });
      const pair = pairOf(path);
      const keys = pair ? [toolchainKey(pair.file), toolchainKey(pair.sidecar)] : [];
      return { keys, archives };
    } catch (err) {
      job.record({ name: channel, version: '-', status: 'failed', reason: describe(err) });
      return undefined;
    }
  }

  /** Stores one archive (held ones are skipped); never throws. */
  async #store(archive: ArchiveRef): Promise<PackageReport> {
    const [, date = '-', name = archive.path] = archive.path.split('/');
    const base = { name, version: date };
    try {
      const stored = await retryJob(
        () => this.#deps.toolchains.fetchArchive(archive.path, archive.sha256),
        this.#deps.retry ?? JOB_RETRY,
        this.#stop.signal,
      );
      if (!stored.fetched) return { ...base, status: 'cached' };
      return { ...base, status: 'fetched', bytes: stored.bytes };
    } catch (err) {
      return { ...base, status: 'failed', reason: describe(err) };
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
