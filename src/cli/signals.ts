/**
 * @module
 * The signals a running server answers. SIGTERM and SIGINT stop it gracefully: no new request
 * or job package starts, in-flight responses and the packages jobs are working on finish, for
 * at most `--shutdown-timeout`; what still runs then is abandoned and the process exits (a
 * download cut off leaves only a temp file, removed at the next start, and jobs resume there,
 * skipping what they stored). A second SIGTERM or SIGINT exits at once. SIGHUP reloads
 * (src/reload.ts).
 */
import type { AppLogger } from '../logger.ts';
import { formatDuration } from '../units.ts';

/** What {@link handleSignals} drives. */
export interface SignalTargets {
  log: AppLogger;
  /** Stops the server gracefully (resolves once everything finished). */
  close(): Promise<void>;
  /** The bound on {@link close}, read when the signal comes (a reload may change it). */
  shutdownTimeoutMs(): number;
  /** Reloads the configuration; never rejects. */
  reload(): Promise<unknown>;
  /** Ends the process; tests replace it. Default `process.exit`. */
  exit?: (code: number) => void;
}

/** Installs the handlers; returns a function that removes them. */
export function handleSignals(targets: SignalTargets): () => void {
  const { log } = targets;
  const exit = targets.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onStop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second stop signal: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    void stop(targets, signal, exit);
  };
  const onHangUp = () => {
    void targets.reload();
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onHangUp);
  return () => {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onHangUp);
  };
}

async function stop(
  targets: SignalTargets,
  signal: NodeJS.Signals,
  exit: (code: number) => void,
): Promise<void> {
  const { log } = targets;
  const boundMs = targets.shutdownTimeoutMs();
  log.notice(
    { signal, shutdownTimeout: formatDuration(boundMs) },
    `shutting down: finishing in-flight responses and job packages (at most ${formatDuration(boundMs)})`,
  );
  const timer = setTimeout(() => {
    log.warn(
      { shutdownTimeout: formatDuration(boundMs) },
      'shutdown timeout reached: abandoning the responses and job packages still running',
    );
    exit(0);
  }, boundMs);
  timer.unref();
  try {
    await targets.close();
    log.notice('stopped');
  } catch (err) {
    log.error({ err }, 'shutdown failed');
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
  }
}
