/**
 * @module
 * `cargo-cacher config [--check] [serve flags…]`: the configuration a start with the same flags,
 * environment and config file would have, each value with where it came from
 * (config-print.ts); `--check` only validates, for the CI of an infrastructure repository:
 * exit 0, or 1 with the one-line error. It takes every flag of the serve command, so
 * `cargo-cacher config --config /etc/cargo-cacher/config.toml -p 9000` shows what
 * `cargo-cacher --config /etc/cargo-cacher/config.toml -p 9000` would run with.
 */
import { Command, type Option } from '@commander-js/extra-typings';
import { isCacherError } from '../errors.ts';
import type { CommandLike } from './config-keys.ts';
import { applyConfigLayers } from './config-layers.ts';
import { formatEffectiveConfig } from './config-print.ts';
import type { ServeOptions } from './main.ts';
import { configFromOptions } from './serve.ts';

/** True while {@link buildConfigCommand} builds the serve program it copies options from. */
let copying = false;

/**
 * `buildConfigCommand(buildProgram)`, called while `buildProgram` builds the serve program: the
 * serve command's options are copied from a second one it builds (whose own `config` command,
 * built meanwhile, is left without them and thrown away).
 */
export function buildConfigCommand(buildServe: () => { options: readonly unknown[] }) {
  const command = new Command('config')
    .description(
      'print the configuration in effect (flags, CARGO_CACHER_* variables, the config file, ' +
        'defaults) and where each value came from; takes the flags of the serve command',
    )
    .option('--check', 'only validate: exit 0, or 1 with the error');
  if (!copying) {
    copying = true;
    try {
      for (const option of buildServe().options as Option[]) {
        if (option.long !== '--version') command.addOption(option as Option);
      }
    } finally {
      copying = false;
    }
  }
  return command.action(async (options, self) => {
    await configCommand(self, options.check === true);
  });
}

async function configCommand(
  command: { opts(): object; getOptionValue(key: string): unknown },
  check: boolean,
): Promise<void> {
  try {
    const layers = await applyConfigLayers(command as unknown as CommandLike);
    // The checks a start makes on the settings together (e.g. --mirror-filter needs -a).
    configFromOptions(command.opts() as ServeOptions);
    if (check) {
      process.stdout.write(`configuration OK (config file: ${layers.file ?? 'none'})\n`);
    } else {
      process.stdout.write(formatEffectiveConfig(layers, (name) => command.getOptionValue(name)));
    }
    process.exitCode = 0;
  } catch (err) {
    if (!isCacherError(err)) throw err;
    process.stderr.write(`cargo-cacher: ${err.message}\n`);
    process.exitCode = 1;
  }
}
