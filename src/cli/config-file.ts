/**
 * @module
 * The config file (`--config`, TOML): where it is, reading it, and checking its shape (known
 * sections, known keys, each key in its own section). Values are checked by config-layers.ts,
 * through the flags' own parsers. Every error is one line naming the file, the line and the key;
 * smol-toml gives positions for syntax errors only, so the line of a key is found by scanning
 * the text for it within its section.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { Errors } from '../errors.ts';
import type { ConfigKey } from './config-keys.ts';
import { SECTIONS } from './config-sections.ts';

/** Read when it exists and neither `--config` nor `CARGO_CACHER_CONFIG` names another. */
export const DEFAULT_CONFIG_FILE = '/etc/cargo-cacher/config.toml';

/** One value as the file gives it, with its line. */
export interface FileValue {
  key: ConfigKey;
  value: unknown;
  /** 1-based; `undefined` when the scan could not find it (a dotted or inline-table key). */
  line: number | undefined;
}

/** A config file, read and checked for shape. */
export interface ConfigFile {
  path: string;
  values: FileValue[];
}

/**
 * Which file to read: `explicit` (from `--config` or `CARGO_CACHER_CONFIG`) when given, `none`
 * for no file at all, else {@link DEFAULT_CONFIG_FILE} when it exists.
 */
export function configFilePath(explicit: string | undefined): string | undefined {
  if (explicit === 'none') return undefined;
  if (explicit !== undefined) return resolve(explicit);
  return existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

/** Reads and checks `path` against the known keys. */
export async function readConfigFile(path: string, keys: ConfigKey[]): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`cannot read config file ${path} (${reason})`, {
      cause,
    });
  }
  return { path, values: parseConfigText(text, path, keys) };
}

/** Parses the text of a config file; see the module comment. */
export function parseConfigText(text: string, path: string, keys: ConfigKey[]): FileValue[] {
  let document: Record<string, unknown>;
  try {
    document = parse(text);
  } catch (cause) {
    if (!(cause instanceof TomlError)) throw cause;
    const reason = cause.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '');
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`${path}:${cause.line}: ${reason}`, { cause });
  }
  const where = (line: number | undefined) => (line === undefined ? path : `${path}:${line}`);
  const values: FileValue[] = [];
  for (const [section, table] of Object.entries(document)) {
    const sectionLine = findSectionLine(text, section);
    if (!(SECTIONS as readonly string[]).includes(section)) {
      const home = keys.find((key) => key.name === section)?.section;
      const line = sectionLine ?? findKeyLine(text, '', section);
      throw Errors.CARGO_CACHER_INVALID_CONFIG(
        home !== undefined && !isTable(table)
          ? `${where(line)}: key "${section}" outside a section: it belongs in [${home}]`
          : `${where(line)}: unknown section [${section}] (sections: ${SECTIONS.join(', ')})`,
      );
    }
    if (!isTable(table)) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG(
        `${where(findKeyLine(text, '', section))}: "${section}" must be a section, [${section}]`,
      );
    }
    for (const [name, value] of Object.entries(table)) {
      const line = findKeyLine(text, section, name) ?? sectionLine;
      const key = keys.find((candidate) => candidate.name === name);
      if (key === undefined || key.section !== section) {
        const hint =
          key?.section !== undefined ? `: it belongs in [${key.section}]` : suggestion(name, keys);
        throw Errors.CARGO_CACHER_INVALID_CONFIG(
          `${where(line)}: unknown key "${name}" in [${section}]${hint}`,
        );
      }
      values.push({ key, value, line });
    }
  }
  return values;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isDate(value);
}

function isDate(value: object): boolean {
  return value instanceof Date;
}

/** A close key name, for a typo (`prot` → `port`). */
function suggestion(name: string, keys: ConfigKey[]): string {
  const close = keys.find((key) => distance(key.name, name) <= Math.max(2, name.length / 4));
  return close ? ` (did you mean "${close.name}" in [${close.section}]?)` : '';
}

/** Edit distance, for {@link suggestion}. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

const HEADER = /^\s*\[\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*\]\s*(?:#.*)?$/;

/** The line of `[section]`, 1-based. */
export function findSectionLine(text: string, section: string): number | undefined {
  const index = text.split(/\r?\n/).findIndex((line) => headerOf(line) === section);
  return index < 0 ? undefined : index + 1;
}

/**
 * The line where `name` is set in `section` (`''`: before any header), 1-based: `name = …`,
 * `"name" = …`, or `section.name = …` before any header.
 */
export function findKeyLine(text: string, section: string, name: string): number | undefined {
  const lines = text.split(/\r?\n/);
  let current = '';
  for (const [index, line] of lines.entries()) {
    const header = headerOf(line);
    if (header !== undefined) {
      current = header;
      continue;
    }
    const key = keyOf(line);
    if (key === undefined) continue;
    if (current === section && key === name) return index + 1;
    if (current === '' && key === `${section}.${name}`) return index + 1;
  }
  return undefined;
}

function headerOf(line: string): string | undefined {
  const match = HEADER.exec(line);
  return match ? (match[1] ?? match[2] ?? match[3]) : undefined;
}

/** The key of a `key = value` line, quotes and spaces around dots removed. */
function keyOf(line: string): string | undefined {
  const match =
    /^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=/.exec(
      line,
    );
  if (!match?.[1]) return undefined;
  return match[1]
    .split(/\s*\.\s*/)
    .map((part) => part.replace(/^["']|["']$/g, ''))
    .join('.');
}
