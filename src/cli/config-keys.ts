/**
 * @module
 * The settings of the serve command as the config layer sees them, derived from its commander
 * options: every long option `--some-flag` is the key `some-flag` of the section
 * config-sections.ts gives it, and the environment variable `CARGO_CACHER_SOME_FLAG`. What kind
 * of value a key takes follows from the option: one with an argument takes a value (a list when
 * its default is an array: a repeatable flag), one without is a boolean, a negated one
 * (`--no-git`) a boolean that switches its positive off, and a counted one (`-d`, `-dd`) a whole
 * number.
 */
import { COMMAND_LINE_ONLY, CONFIG_SECTIONS, type Section } from './config-sections.ts';

/** The parts of a commander option the config layer reads. */
export interface OptionLike {
  flags: string;
  description: string;
  long?: string | undefined;
  required: boolean;
  optional: boolean;
  negate: boolean;
  defaultValue?: unknown;
  defaultValueDescription?: string | undefined;
  argChoices?: readonly string[] | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: commander's own signature
  parseArg?: ((value: string, previous: any) => unknown) | undefined;
  attributeName(): string;
}

/** A command whose options the config layer fills in. */
export interface CommandLike {
  readonly options: readonly OptionLike[];
  getOptionValue(key: string): unknown;
  getOptionValueSource(key: string): string | undefined;
  setOptionValueWithSource(key: string, value: unknown, source: 'env' | 'config'): unknown;
}

/** What a key takes: see the module comment. */
export type KeyKind = 'value' | 'list' | 'boolean' | 'negated' | 'counter';

/** One setting: a flag, its key in the file and its environment variable. */
export interface ConfigKey {
  /** The flag's long name without `--`: the key in the file. */
  name: string;
  /** `--name`. */
  flag: string;
  /** The commander attribute the value lands in (`--no-git` and `--git` share `git`). */
  attribute: string;
  /** `undefined` only for a flag missing from CONFIG_SECTIONS (a test catches it). */
  section: Section | undefined;
  /** `CARGO_CACHER_NAME`. */
  env: string;
  kind: KeyKind;
  option: OptionLike;
}

/** The environment variable of a long flag name: `max-size` → `CARGO_CACHER_MAX_SIZE`. */
export function envName(name: string): string {
  return `CARGO_CACHER_${name.toUpperCase().replaceAll('-', '_')}`;
}

/** Every setting of `command`, in the order its options were declared. */
export function configKeys(command: Pick<CommandLike, 'options'>): ConfigKey[] {
  const keys: ConfigKey[] = [];
  for (const option of command.options) {
    const name = option.long?.replace(/^--/, '');
    if (name === undefined || COMMAND_LINE_ONLY.has(name)) continue;
    keys.push({
      name,
      flag: `--${name}`,
      attribute: option.attributeName(),
      section: CONFIG_SECTIONS[name],
      env: envName(name),
      kind: kindOf(option),
      option,
    });
  }
  return keys;
}

function kindOf(option: OptionLike): KeyKind {
  if (option.required || option.optional) {
    return Array.isArray(option.defaultValue) ? 'list' : 'value';
  }
  if (option.negate) return 'negated';
  if (typeof option.defaultValue === 'number' && option.parseArg) return 'counter';
  return 'boolean';
}
