/**
 * @module
 * A throw-away cargo world for end-to-end tests: a fresh CARGO_HOME whose config replaces
 * crates.io with a given registry, a binary project depending on some crates, and a runner.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { makeTempDir, removeTempDir } from './temp-dir.ts';

const execFileAsync = promisify(execFile);

/** What to put in the sandbox. */
export interface CargoSandboxOptions {
  /** The replacement registry as cargo spells it: `sparse+http://…/index/` or a git URL/path. */
  registry: string;
  /** Dependencies of the project: crate name → version requirement. */
  deps: Record<string, string>;
  /** The project's `src/main.rs`; default: an empty `main`. */
  mainRs?: string;
  /** Extra lines appended to CARGO_HOME/config.toml. */
  extraConfig?: string;
  /**
   * Declare the registry under `[registries.<name>]` instead of `[source]` (needed for tokens,
   * cargo-protocol.md §4), with `global-credential-providers = ["cargo:token"]`.
   */
  registryName?: string;
  /** Extra environment for every cargo run (a registry token, say). */
  env?: Record<string, string>;
}

/** A fresh CARGO_HOME plus project, removed by {@link CargoSandbox.remove}. */
export interface CargoSandbox {
  root: string;
  cargoHome: string;
  projectDir: string;
  targetDir: string;
  /** The environment every cargo run gets. */
  env: NodeJS.ProcessEnv;
  /** Runs `cargo <args>` in the project; rejects with cargo's stderr in the message on failure. */
  cargo(args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Deletes everything, cargo's caches included. */
  remove(): Promise<void>;
}

/** The package name of the sandbox project (and so its binary's name). */
export const SANDBOX_PACKAGE = 'sandbox-app';

/**
 * Creates the sandbox. `[net] retry = 0` makes failures fail fast instead of after cargo's
 * backoff, and `CARGO_HTTP_MULTIPLEXING=false` drops the `Upgrade: h2c` dance on `http://`.
 */
export async function makeCargoSandbox(options: CargoSandboxOptions): Promise<CargoSandbox> {
  const root = await makeTempDir('cargo-sandbox');
  const cargoHome = join(root, 'cargo-home');
  const projectDir = join(root, 'project');
  const targetDir = join(root, 'target');
  await mkdir(cargoHome, { recursive: true });
  await mkdir(join(projectDir, 'src'), { recursive: true });
  const name = options.registryName;
  const registry = name
    ? [
        `[registries.${name}]`,
        `index = ${JSON.stringify(options.registry)}`,
        '[registry]',
        'global-credential-providers = ["cargo:token"]',
      ]
    : ['[source.fake]', `registry = ${JSON.stringify(options.registry)}`];
  const config = [
    '[source.crates-io]',
    `replace-with = "${name ?? 'fake'}"`,
    ...registry,
    '[net]',
    'retry = 0',
    options.extraConfig ?? '',
  ];
  await writeFile(join(cargoHome, 'config.toml'), `${config.join('\n')}\n`);
  await writeFile(join(projectDir, 'Cargo.toml'), projectManifest(options.deps));
  await writeFile(join(projectDir, 'src', 'main.rs'), options.mainRs ?? 'fn main() {}\n');
  const env = { ...cargoEnv(cargoHome, targetDir), ...options.env };
  return {
    root,
    cargoHome,
    projectDir,
    targetDir,
    env,
    cargo: (args) => runCargo(args, projectDir, env),
    remove: () => removeTempDir(root),
  };
}

function projectManifest(deps: Record<string, string>): string {
  const lines = ['[package]', `name = "${SANDBOX_PACKAGE}"`, 'version = "0.1.0"'];
  lines.push('edition = "2021"', '', '[dependencies]');
  for (const [name, req] of Object.entries(deps)) lines.push(`${name} = ${JSON.stringify(req)}`);
  return `${lines.join('\n')}\n`;
}

/** The parent environment minus anything CARGO_* that could leak the developer's setup in. */
function cargoEnv(cargoHome: string, targetDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('CARGO_')) env[key] = value;
  }
  // rustup's proxies find toolchains through RUSTUP_HOME, so a private CARGO_HOME is safe.
  return {
    ...env,
    CARGO_HOME: cargoHome,
    CARGO_TARGET_DIR: targetDir,
    CARGO_HTTP_MULTIPLEXING: 'false',
    CARGO_TERM_COLOR: 'never',
    CARGO_TERM_PROGRESS_WHEN: 'never',
  };
}

async function runCargo(args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  try {
    return await execFileAsync('cargo', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`cargo ${args.join(' ')} failed:\n${stderr}`, { cause: error });
  }
}

/** A `[[package]]` of the sandbox's Cargo.lock, in cargo's wire names. */
export interface LockedPackage {
  name: string;
  version: string;
  source?: string;
  checksum?: string;
}

/** The registry packages (those with a `source`) of the sandbox project's Cargo.lock. */
export async function lockedPackages(box: CargoSandbox): Promise<LockedPackage[]> {
  const text = await readFile(join(box.projectDir, 'Cargo.lock'), 'utf8');
  const lock = parse(text) as unknown as { package: LockedPackage[] };
  return lock.package.filter((pkg) => pkg.source !== undefined);
}
