/**
 * @module
 * Runs wrk with a Lua script that rotates over a list of paths (optionally with one header
 * value per path, for conditional requests) and parses its summary.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './procs.ts';

/** What one wrk run measured. */
export interface WrkResult {
  requestsPerSec: number;
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses outside 2xx/3xx plus socket errors: must be 0 for a valid run. */
  errors: number;
}

/** One wrk run. */
export interface WrkRun {
  url: string;
  paths: string[];
  /** A header sent with each path (same order), e.g. `If-None-Match` with its ETag. */
  header?: { name: string; values: string[] };
  connections: number;
  seconds: number;
  /** Where to write the Lua script. */
  dir: string;
}

/** Lua string literal (paths and ETags are ASCII; quotes and backslashes escaped). */
function lua(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * The script. One wrk thread, so one Lua state walks the list in order; every connection takes
 * the next path, which spreads the 64 connections over all files.
 */
function script(paths: string[], header: WrkRun['header']): string {
  const list = paths.map(lua).join(',\n');
  const values = header ? header.values.map(lua).join(',\n') : '';
  const request = header
    ? `return wrk.format("GET", paths[i], { [${lua(header.name)}] = values[i] })`
    : 'return wrk.format("GET", paths[i])';
  return `local paths = {\n${list}\n}
local values = {\n${values}\n}
local i = 0
request = function()
  i = i % #paths + 1
  ${request}
end
`;
}

/** Runs wrk (one thread: the server under test gets the other core) and parses the result. */
export async function runWrk(options: WrkRun): Promise<WrkResult> {
  const file = join(options.dir, `wrk-${process.hrtime.bigint()}.lua`);
  await writeFile(file, script(options.paths, options.header));
  const args = ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency'];
  args.push('--timeout', '10s', '-s', file, options.url);
  const { stdout } = await run('wrk', args, { timeoutMs: (options.seconds + 60) * 1000 });
  return parseWrk(stdout);
}

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const SIZES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** Parses wrk's text summary. */
export function parseWrk(text: string): WrkResult {
  const number = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  const latency = (pct: string) => {
    const match = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return match ? Number(match[1]) * (UNITS[match[2] ?? 'ms'] ?? 1) : Number.NaN;
  };
  const transfer = /^Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/m.exec(text);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    text,
  );
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const sockets = socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    requestsPerSec: number(/^Requests\/sec:\s+([\d.]+)/m),
    bytesPerSec: transfer ? Number(transfer[1]) * (SIZES[transfer[2] ?? 'B'] ?? 1) : Number.NaN,
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    errors: non2xx + sockets,
  };
}
