/**
 * @module
 * The real rustup (`~/.cargo/bin/rustup`) in a sandbox: every home is a fresh `RUSTUP_HOME` and
 * `CARGO_HOME` under the temp dir, so the machine's own toolchains are never touched, and
 * rustup is pointed at a dist server with `RUSTUP_DIST_SERVER` and `RUSTUP_UPDATE_ROOT`.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makeTempDir, removeTempDir } from './temp-dir.ts';
import { toolAvailable } from './tools.ts';

/** Where rustup is installed on these machines. */
export const RUSTUP =
  process.env.CARGO_CACHER_TEST_RUSTUP ?? join(homedir(), '.cargo', 'bin', 'rustup');

/** True when the real rustup runs (else the test is skipped, or failed on CI). */
export function rustupAvailable(t: TestContext): Promise<boolean> {
  return toolAvailable(t, RUSTUP, ['--version']);
}

/** What a rustup run printed. */
export interface RustupRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh pair of homes; removed when the test ends. */
export interface RustupHome {
  dir: string;
  /** Runs `rustup <args>` against `server` (`http://127.0.0.1:PORT`). */
  run(args: string[], server: string): Promise<RustupRun>;
}

/** Makes a fresh sandbox for one rustup client. */
export async function makeRustupHome(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await makeTempDir('rustup-home');
  t.after(() => removeTempDir(dir));
  const rustupHome = join(dir, 'rustup');
  const cargoHome = join(dir, 'cargo');
  await mkdir(rustupHome);
  await mkdir(cargoHome);
  const home: RustupHome = {
    dir,
    run: (args, server) => runRustup(args, sandboxEnv(rustupHome, cargoHome, server)),
  };
  return home;
}

/** `rustup toolchain install <channel> --profile minimal --no-self-update`. */
export function installToolchain(home: RustupHome, server: string, channel = 'stable') {
  return home.run(
    ['toolchain', 'install', channel, '--profile', 'minimal', '--no-self-update'],
    server,
  );
}

function sandboxEnv(rustupHome: string, cargoHome: string, server: string): NodeJS.ProcessEnv {
  // Nothing of the caller's rustup settings leaks in (a toolchain override, another server).
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('RUSTUP_')),
  );
  return {
    ...env,
    RUSTUP_HOME: rustupHome,
    CARGO_HOME: cargoHome,
    RUSTUP_DIST_SERVER: server,
    RUSTUP_UPDATE_ROOT: `${server}/rustup`,
    RUSTUP_TERM_COLOR: 'never',
    RUSTUP_TERM_PROGRESS_WHEN: 'never',
  };
}

function runRustup(args: string[], env: NodeJS.ProcessEnv): Promise<RustupRun> {
  return new Promise((resolve) => {
    execFile(RUSTUP, args, { env, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
