/**
 * @module
 * Flag parsers: each turns one flag value into a typed value or throws commander's
 * `InvalidArgumentError` with a one-line reason, which commander prints without a stack trace.
 */
import { InvalidArgumentError } from '@commander-js/extra-typings';
import { parseDuration, parseSize } from '../units.ts';

/** A TCP port, 0-65535. */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new InvalidArgumentError('a port is a number from 0 to 65535.');
  }
  return port;
}

/** A positive whole number (threads, counts). */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1024) {
    throw new InvalidArgumentError('expected a whole number from 1 to 1024.');
  }
  return n;
}

/** A connection count, 1 to 1,000,000. */
export function parseConnectionCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1_000_000) {
    throw new InvalidArgumentError('expected a whole number from 1 to 1000000.');
  }
  return n;
}

/** A duration in milliseconds (`600`, `30s`, `10m`, `2 hours`). */
export function parseDurationFlag(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}

/** A size in bytes (`500MB`, `20GB`). */
export function parseSizeFlag(value: string): number {
  try {
    return parseSize(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}

/** An absolute http(s) URL. */
export function parseUrlFlag(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // reported below
  }
  throw new InvalidArgumentError('expected an http:// or https:// URL.');
}

/** The upstream sparse index: a URL, or `none` to switch the sparse upstream off. */
export function parseSparseFlag(value: string): string | undefined {
  return value === 'none' ? undefined : parseUrlListFlag(value);
}

/** One URL, or several equivalent ones separated by commas (`-u a,b`): tried in order. */
export function parseUrlListFlag(value: string): string {
  const urls = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (urls.length === 0) throw new InvalidArgumentError('expected an http:// or https:// URL.');
  return urls.map(parseUrlFlag).join(',');
}

/** Collects a repeatable flag's values. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Counts a repeatable boolean flag (`-ddd`). */
export function increase(_value: string, previous: number): number {
  return previous + 1;
}
