/**
 * @module
 * Job progress for people: on a terminal a progress bar with counts, bytes, rate and ETA;
 * otherwise a log line every few seconds. A final summary either way.
 */
import cliProgress from 'cli-progress';
import type { AppLogger } from '../logger.ts';
import type { Job } from './job.ts';

const LOG_EVERY_MS = 5_000;

/** Stops reporting and prints the final summary. */
export type StopProgress = () => void;

/** Starts reporting on `job`; a bar when `tty`, else log lines. */
export function reportProgress(job: Job, log: AppLogger, tty: boolean): StopProgress {
  return tty ? startBar(job) : startLogLines(job, log);
}

/** One line: fetched, already cached, failed, skipped, bytes, time. */
export function summarize(job: Job): string {
  const { counts } = job;
  const seconds = (((job.finishedAt ?? Date.now()) - job.startedAt) / 1000).toFixed(1);
  return (
    `${job.kind} ${job.state === 'running' ? 'running' : 'finished'}: ${counts.fetched} fetched, ` +
    `${counts.cached} already cached, ${counts.failed} failed, ${counts.skipped} skipped ` +
    `(${formatBytes(counts.bytes)} in ${seconds} s)`
  );
}

function startLogLines(job: Job, log: AppLogger): StopProgress {
  const timer = setInterval(() => {
    const rate = job.done / Math.max((Date.now() - job.startedAt) / 1000, 0.001);
    log.notice(
      { job: job.id, done: job.done, total: job.counts.total, rate: Math.round(rate) },
      `${job.kind} progress: ${job.done}/${job.counts.total} (${formatBytes(job.counts.bytes)})`,
    );
  }, LOG_EVERY_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    log.notice({ job: job.id, counts: job.counts }, summarize(job));
  };
}

function startBar(job: Job): StopProgress {
  const bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {value}/{total} | fetched {fetched} cached {cached} failed {failed} | {bytes} | {rate}/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(job.counts.total, 0, payload(job));
  const timer = setInterval(() => {
    bar.setTotal(job.counts.total);
    bar.update(job.done, payload(job));
  }, 200);
  return () => {
    clearInterval(timer);
    bar.setTotal(job.counts.total);
    bar.update(job.done, payload(job));
    bar.stop();
    process.stderr.write(`${summarize(job)}\n`);
  };
}

function payload(job: Job) {
  const rate = job.done / Math.max((Date.now() - job.startedAt) / 1000, 0.001);
  return { ...job.counts, bytes: formatBytes(job.counts.bytes), rate: rate.toFixed(1) };
}

/** `1.5 MB`-style sizes. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
