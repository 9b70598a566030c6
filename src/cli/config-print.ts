/**
 * @module
 * The effective configuration as `cargo-cacher config` prints it: a TOML file with every key
 * in its section, each value in the form the flags take (`"1m"`, `"20GB"`), followed by where it
 * came from (`# flag --port`, `# env CARGO_CACHER_PORT`, `# file /etc/…/config.toml:3`,
 * `# default`). Settings that are not set are commented out, so the output is itself a config
 * file that gives the same settings. Secrets are redacted: credentials in URLs
 * (`http://user:***@proxy`) and keys named like secrets; tokens live in their own file, whose
 * path is printed.
 */
import { formatDuration } from '../units.ts';
import type { ConfigKey } from './config-keys.ts';
import type { LayeredSettings, ValueOrigin } from './config-layers.ts';
import { SECTIONS } from './config-sections.ts';
import { parseDurationFlag, parseSizeFlag, parseSparseFlag } from './options.ts';

/** Where the source comments start. */
const COMMENT_COLUMN = 48;

/** The whole listing; `readValue` reads a commander attribute. */
export function formatEffectiveConfig(
  layers: LayeredSettings,
  readValue: (attribute: string) => unknown,
): string {
  const lines = [
    '# cargo-cacher: the configuration in effect (flags over CARGO_CACHER_* variables over the',
    '# config file over defaults), each value followed by where it came from.',
    `# config file: ${layers.file ?? 'none'}`,
  ];
  for (const section of SECTIONS) {
    const keys = layers.keys.filter((key) => key.section === section);
    if (keys.length === 0) continue;
    lines.push('', `[${section}]`);
    for (const key of keys) lines.push(keyLine(key, layers, readValue));
  }
  const loose = layers.keys.filter((key) => key.section === undefined);
  if (loose.length > 0) {
    lines.push('', '# not in any section yet (environment and flags only):');
    for (const key of loose) lines.push(keyLine(key, layers, readValue).replace(/^(?!#)/, '# '));
  }
  return `${lines.join('\n')}\n`;
}

function keyLine(
  key: ConfigKey,
  layers: LayeredSettings,
  readValue: (attribute: string) => unknown,
): string {
  const value = readValue(key.attribute);
  const origin = layers.origins.get(key.attribute) ?? { source: 'default' };
  if (key.kind === 'negated') {
    const on = value === false;
    return withOrigin(`${key.name} = ${on}`, on ? origin : { source: 'default' });
  }
  if (value === false && key.kind === 'value') {
    const negated = layers.keys.find(
      (other) => other.attribute === key.attribute && other.kind === 'negated',
    );
    return withOrigin(`# ${key.name}: off (${negated?.name ?? 'false'})`, origin);
  }
  if (value === undefined && key.kind === 'boolean')
    return withOrigin(`${key.name} = false`, origin);
  const text = formatValue(key, value);
  if (text === undefined) {
    const note = key.option.defaultValueDescription ?? 'not set';
    return withOrigin(`# ${key.name} = (${note})`, origin);
  }
  return withOrigin(`${key.name} = ${text}`, origin);
}

function withOrigin(line: string, origin: ValueOrigin): string {
  const source = origin.where ? `${origin.source} ${origin.where}` : origin.source;
  return `${line.padEnd(COMMENT_COLUMN - 1)} # ${source}`;
}

/**
 * A value as a TOML value in the flags' own forms; `undefined` when not set. Secrets are
 * redacted unless `redact` is false (a config file written from flags).
 */
export function formatValue(
  key: ConfigKey,
  value: unknown,
  { redact = true }: { redact?: boolean } = {},
): string | undefined {
  const parser = key.option.parseArg;
  if (value === undefined) return parser === parseSparseFlag ? quote('none') : undefined;
  if (redact && SECRET_NAME.test(key.name)) return quote('***');
  const one = (item: unknown) => scalar(parser, item, redact);
  if (Array.isArray(value)) return `[${value.map(one).join(', ')}]`;
  return one(value);
}

function scalar(parser: ConfigKey['option']['parseArg'], value: unknown, redact: boolean): string {
  if (typeof value === 'number' && parser === parseDurationFlag) {
    return quote(formatDuration(value));
  }
  if (typeof value === 'number' && parser === parseSizeFlag) return quote(formatSize(value));
  if (typeof value === 'string') return quote(redact ? redactUrlCredentials(value) : value);
  return String(value);
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** Keys whose value is itself a secret (none of today's flags; proxy passwords, S3 keys). */
const SECRET_NAME = /(secret|password|passwd|access-key|api-key|token)$/;

/**
 * Credentials in URLs masked: `http://user:pass@host` → `http://user:***@host`, and a user part
 * alone (a token as user name) → `http://***@host`.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(
    /\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s,]*)@/gi,
    (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return colon < 0 ? `${scheme}***@` : `${scheme}${userinfo.slice(0, colon)}:***@`;
    },
  );
}

const SIZE_UNITS: [string, number][] = [
  ['TiB', 1024 ** 4],
  ['TB', 1e12],
  ['GiB', 1024 ** 3],
  ['GB', 1e9],
  ['MiB', 1024 ** 2],
  ['MB', 1e6],
  ['KiB', 1024],
  ['KB', 1e3],
];

/** A size as the flags write it, in its largest whole unit: `20GB`, `1GiB`, `1500B`. */
export function formatSize(bytes: number): string {
  const found = SIZE_UNITS.find(([, size]) => bytes >= size && bytes % size === 0);
  return found ? `${bytes / found[1]}${found[0]}` : `${bytes}B`;
}
