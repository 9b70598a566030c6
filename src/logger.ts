/**
 * @module
 * The process logger (pino). Levels follow the seed's `-d` flag: none = warn, `-d` = info,
 * `-dd` = debug, `-ddd` = trace. Lifecycle lines an operator always wants (where it listens,
 * clone progress, refresh failures) use the extra level `notice`, between warn and error, so
 * they show at the default verbosity too.
 */
import { type Logger, pino } from 'pino';

/** Log levels in `-d` order. */
export const LOG_LEVELS = ['warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number] | 'silent';
export type LogFormat = 'json' | 'pretty';

/** The logger type used throughout, with the `notice` level. */
export type AppLogger = Logger<'notice'>;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where JSON lines go (tests pass a stream); default stdout. */
  destination?: NodeJS.WritableStream;
}

/** Creates the process logger. */
export function createLogger(options: LoggerOptions): AppLogger {
  const base = {
    level: options.level,
    customLevels: { notice: 45 },
    base: undefined,
    formatters: { level: (label: string) => ({ level: label }) },
    // Tokens and credentials must never reach a log line.
    redact: ['req.headers.authorization', 'headers.authorization'],
  };
  if (options.format === 'pretty') {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: process.stdout.isTTY, customLevels: 'notice:45' },
      },
    });
  }
  return options.destination
    ? pino(base, options.destination as NodeJS.WritableStream & { write: (s: string) => boolean })
    : pino(base);
}

/** Maps the number of `-d` flags to a level. */
export function levelForVerbosity(count: number): LogLevel {
  return LOG_LEVELS[Math.min(Math.max(count, 0), LOG_LEVELS.length - 1)] ?? 'warn';
}
