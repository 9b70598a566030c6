/**
 * @module
 * The toolchain flags' parsers (`--rustup-upstream`, `--rustup-mirror`, `--rustup-targets`):
 * each turns one value into a typed one or throws commander's `InvalidArgumentError` with a
 * one-line reason.
 */
import { InvalidArgumentError } from '@commander-js/extra-typings';
import { manifestPathOfChannel } from '../registry/rustup-paths.ts';
import { parseUrlFlag } from './options.ts';

/** The dist server upstream: a URL, or `none` (serve only what is held). */
export function parseRustupUpstream(value: string): string | undefined {
  return value === 'none' ? undefined : parseUrlFlag(value);
}

/** A comma-separated list of channels (`stable,1.90.0,nightly-2026-11-01`). */
export function parseChannelList(value: string): string[] {
  const channels = splitList(value);
  if (channels.length === 0) throw new InvalidArgumentError('expected channels such as stable.');
  for (const channel of channels) {
    try {
      manifestPathOfChannel(channel);
    } catch {
      throw new InvalidArgumentError(`"${channel}" is not a rustup channel.`);
    }
  }
  return channels;
}

/** Collects a repeatable `--toolchain <channel>`. */
export function collectChannel(value: string, previous: string[]): string[] {
  return [...previous, ...parseChannelList(value)];
}

/** A comma-separated list of target triples. */
export function parseTargetList(value: string): string[] {
  const targets = splitList(value);
  if (targets.length === 0 || !targets.every((target) => /^[A-Za-z0-9_.-]+$/.test(target))) {
    throw new InvalidArgumentError('expected target triples such as x86_64-unknown-linux-gnu.');
  }
  return targets;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
