/**
 * @module
 * The config layers over the serve command's flags: flags over environment variables over the
 * config file over defaults. Commander has parsed the flags (their values have the source
 * `cli`); this fills in every other setting from `CARGO_CACHER_*` and then the file, through the
 * same parser each flag uses, so a duration, a size or a choice means the same wherever it is
 * written, and a bad one is refused with one line naming where it came from. What each value's
 * source was is kept for `cargo-cacher config`.
 *
 * Forms outside the command line:
 * - a value: a TOML string (numbers are taken as their text, so `port = 8080` and
 *   `index-ttl = 60` work); in the environment, the text. A flag whose value is a
 *   comma-separated list (`-s a,b`) also takes an array of strings.
 * - a repeatable flag (`-f`, `--pin`, `--mirror-filter`): a TOML array of strings; in the
 *   environment, one string with the values separated by commas.
 * - a flag without a value (`--offline`): `true` or `false`; in the environment also `1`/`0`,
 *   `yes`/`no`, `on`/`off`.
 * - a negated flag (`--no-git`): `no-git = true` is the flag; `false` is the same as leaving it
 *   out.
 * - a counted flag (`-d`, `-dd`): the count, `debug = 2`.
 */
import { Errors } from '../errors.ts';
import { type ConfigFile, configFilePath, readConfigFile } from './config-file.ts';
import { type CommandLike, type ConfigKey, configKeys, envName } from './config-keys.ts';

/** Where a setting's value came from. */
export interface ValueOrigin {
  source: 'flag' | 'env' | 'file' | 'default';
  /** The flag, the environment variable, or `file:line`. */
  where?: string;
}

/** The outcome of {@link applyConfigLayers}. */
export interface LayeredSettings {
  /** The config file read, if any. */
  file: string | undefined;
  keys: ConfigKey[];
  /** By commander attribute (`--git` and `--no-git` share `git`). */
  origins: Map<string, ValueOrigin>;
}

/** The environment variable naming the config file (`--config`'s own). */
export const CONFIG_ENV = envName('config');

const applied = new WeakMap<object, LayeredSettings>();

/** The layers applied to `command` by {@link applyConfigLayers}, if any. */
export function layersOf(command: object): LayeredSettings | undefined {
  return applied.get(command);
}

/**
 * Fills in `command`'s options from the environment and the config file (see the module
 * comment). Throws `CARGO_CACHER_INVALID_CONFIG` with one line for a bad file, key or value.
 */
export async function applyConfigLayers(
  command: CommandLike,
  env: NodeJS.ProcessEnv = process.env,
): Promise<LayeredSettings> {
  const keys = configKeys(command);
  const path = configFilePath(configOption(command, env));
  const file = path === undefined ? undefined : await readConfigFile(path, keys);
  const fromFile = file ? fileLayer(file) : new Map<string, LayerValue>();
  const fromEnv = envLayer(keys, env);
  const origins = new Map<string, ValueOrigin>();
  for (const key of keys) {
    if (origins.has(key.attribute)) continue;
    const source = command.getOptionValueSource(key.attribute);
    if (source === 'cli') {
      origins.set(key.attribute, { source: 'flag', where: flagOf(keys, key, command) });
      continue;
    }
    const layer = fromEnv.get(key.attribute) ?? fromFile.get(key.attribute);
    if (layer === undefined) {
      origins.set(key.attribute, { source: 'default' });
      continue;
    }
    command.setOptionValueWithSource(
      key.attribute,
      layer.value,
      layer.origin.source === 'env' ? 'env' : 'config',
    );
    origins.set(key.attribute, layer.origin);
  }
  const settings = { file: path, keys, origins };
  applied.set(command, settings);
  return settings;
}

/** `--config` from the command line, else `CARGO_CACHER_CONFIG`. */
function configOption(command: CommandLike, env: NodeJS.ProcessEnv): string | undefined {
  const flag = command.getOptionValue('config');
  if (typeof flag === 'string') return flag;
  const fromEnv = env[CONFIG_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/** The flag that set an attribute on the command line (`--no-git` when it switched git off). */
function flagOf(keys: ConfigKey[], key: ConfigKey, command: CommandLike): string {
  const value = command.getOptionValue(key.attribute);
  const negated = keys.find(
    (other) => other.attribute === key.attribute && other.kind === 'negated',
  );
  return value === false && negated ? negated.flag : key.flag;
}

/** A parsed value of one layer, with where it came from. */
interface LayerValue {
  value: unknown;
  origin: ValueOrigin;
  key: ConfigKey;
}

function fileLayer(file: ConfigFile): Map<string, LayerValue> {
  const layer = new Map<string, LayerValue>();
  for (const { key, value, line } of file.values) {
    const where = line === undefined ? file.path : `${file.path}:${line}`;
    const fail = (reason: string) =>
      Errors.CARGO_CACHER_INVALID_CONFIG(`${where}: [${key.section}] ${key.name}: ${reason}`);
    const parsed = fromToml(key, value, fail);
    if (parsed === SKIP) continue;
    addTo(layer, { value: parsed, origin: { source: 'file', where }, key }, fail);
  }
  return layer;
}

function envLayer(keys: ConfigKey[], env: NodeJS.ProcessEnv): Map<string, LayerValue> {
  const layer = new Map<string, LayerValue>();
  for (const key of keys) {
    const text = env[key.env];
    if (text === undefined || text === '') continue;
    const fail = (reason: string) => Errors.CARGO_CACHER_INVALID_CONFIG(`${key.env}: ${reason}`);
    const parsed = fromText(key, text, fail);
    if (parsed === SKIP) continue;
    addTo(layer, { value: parsed, origin: { source: 'env', where: key.env }, key }, fail);
  }
  return layer;
}

/** Two keys of one attribute (`git` and `no-git = true`) set in one layer contradict. */
function addTo(layer: Map<string, LayerValue>, entry: LayerValue, fail: Failure): void {
  const other = layer.get(entry.key.attribute);
  if (other !== undefined) {
    throw fail(`contradicts ${other.origin.where ?? other.key.name} (${other.key.name})`);
  }
  layer.set(entry.key.attribute, entry);
}

type Failure = (reason: string) => Error;

/** A negated key set to false: the same as not setting it. */
const SKIP = Symbol('skip');

/** A TOML value, checked for type and parsed like the flag's argument. */
function fromToml(key: ConfigKey, value: unknown, fail: Failure): unknown {
  switch (key.kind) {
    case 'value':
      // A flag that takes a comma-separated list (`-s a,b`) takes an array as well.
      if (Array.isArray(value) && value.every((item) => typeof item === 'string')) {
        return parseWith(key, value.join(','), key.option.defaultValue, fail);
      }
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw fail(`expected a string, got ${typeName(value)}`);
      }
      return parseWith(key, String(value), key.option.defaultValue, fail);
    case 'list':
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
        throw fail(`expected an array of strings, got ${typeName(value)}`);
      }
      return parseList(key, value, fail);
    case 'counter':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        throw fail(`expected a whole number (0 or more), got ${typeName(value)}`);
      }
      return value;
    case 'boolean':
    case 'negated':
      if (typeof value !== 'boolean') throw fail(`expected true or false, got ${typeName(value)}`);
      return booleanValue(key, value);
  }
}

/** An environment variable's text, parsed like the flag's argument. */
function fromText(key: ConfigKey, text: string, fail: Failure): unknown {
  switch (key.kind) {
    case 'value':
      return parseWith(key, text, key.option.defaultValue, fail);
    case 'list':
      return parseList(
        key,
        text.split(',').filter((part) => part.trim() !== ''),
        fail,
      );
    case 'counter':
      if (!/^\d+$/.test(text.trim())) throw fail(`expected a whole number, got "${text}"`);
      return Number(text.trim());
    case 'boolean':
    case 'negated': {
      const value = BOOLEAN_WORDS[text.trim().toLowerCase()];
      if (value === undefined) throw fail(`expected true or false, got "${text}"`);
      return booleanValue(key, value);
    }
  }
}

const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  false: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
  on: true,
  off: false,
};

function booleanValue(key: ConfigKey, value: boolean): unknown {
  if (key.kind !== 'negated') return value;
  return value ? false : SKIP;
}

function parseList(key: ConfigKey, items: string[], fail: Failure): unknown {
  let value = key.option.defaultValue;
  for (const item of items) value = parseWith(key, item, value, fail);
  return value;
}

/** Runs the flag's own parser (or takes the text as is, for a flag without one). */
function parseWith(key: ConfigKey, text: string, previous: unknown, fail: Failure): unknown {
  const parse = key.option.parseArg;
  if (parse === undefined) return text;
  try {
    return parse(text, previous);
  } catch (err) {
    throw fail((err as Error).message.replace(/\.$/, ''));
  }
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (value === null) return 'null';
  const type = typeof value;
  return type === 'object' ? 'a table' : `a ${type}`;
}

/** The parts of the serve program {@link resolveServeOptions} uses. */
export interface ServeProgram extends CommandLike {
  parseOptions(args: string[]): { operands: string[]; unknown: string[] };
  exitOverride(): unknown;
  configureOutput(output: { writeOut?(s: string): void; writeErr?(s: string): void }): unknown;
  opts(): Record<string, unknown>;
}

/**
 * The settings a start with `args` would have now: `args` parsed by a fresh serve `program`
 * (no action runs), then the environment and the config file as they are now. A reload reads
 * the config file again this way; the flags and the environment of a running process do not
 * change.
 */
export async function resolveServeOptions(
  program: ServeProgram,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ options: Record<string, unknown>; layers: LayeredSettings }> {
  program.exitOverride();
  program.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  const { operands, unknown } = program.parseOptions(args);
  if (operands.length > 0 || unknown.length > 0) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `unexpected arguments: ${[...operands, ...unknown].join(' ')}`,
    );
  }
  const layers = await applyConfigLayers(program, env);
  return { options: program.opts(), layers };
}

/**
 * The serve command's `preAction` hook: the layers apply before serve's own action (the hook
 * also runs before subcommands' actions, which take no config file).
 */
export async function applyLayersBeforeServe(
  command: CommandLike,
  actionCommand: unknown,
): Promise<void> {
  if (actionCommand === command) await applyConfigLayers(command);
}

/** Where a running server's settings come from, to read them again on SIGHUP. */
export interface SettingsSource {
  /** The config file read at start, if any. */
  file: string | undefined;
  /** The options a start would have now (the config file read again). */
  reread(): Promise<Record<string, unknown>>;
}

/** The {@link SettingsSource} of a serve `command` started with `args`. */
export function settingsSource(
  command: object,
  buildServe: () => ServeProgram,
  args: string[] = process.argv.slice(2),
): SettingsSource {
  return {
    file: layersOf(command)?.file,
    reread: async () => (await resolveServeOptions(buildServe(), args)).options,
  };
}
