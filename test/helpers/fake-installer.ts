/**
 * @module
 * Small but real rust-installer archives, the format rustup unpacks: a top folder
 * `<pkg>-<version>-<triple>/` holding `rust-installer-version` (`3`), `components` (one name a
 * line), and `<component>/manifest.in` (`file:bin/rustc` lines) next to the files themselves.
 * Written as `.tar.gz` with the `tar` package and, when asked, as `.tar.xz` through the system
 * `xz` binary.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { makeTempDir, removeTempDir } from './temp-dir.ts';

const execFileAsync = promisify(execFile);

/** One file of a component: its path below the install prefix, its text, executable or not. */
export interface InstallerFile {
  path: string;
  content: string | Buffer;
  executable?: boolean;
}

/** What goes into one archive. */
export interface InstallerSpec {
  /** The archive's base name without extension: `rustc-1.99.0-x86_64-unknown-linux-gnu`. */
  baseName: string;
  /** The component name written in `components` (`rustc`, `rust-std-<triple>`). */
  component: string;
  files: InstallerFile[];
}

/** A built archive in one or two compressions. */
export interface InstallerArchives {
  gz: Buffer;
  /** Present when `xz` was asked for. */
  xz?: Buffer;
}

/** Builds the archive of `spec`: `.tar.gz`, and `.tar.xz` when `xz` is true. */
export async function buildInstaller(spec: InstallerSpec, xz: boolean): Promise<InstallerArchives> {
  const work = await makeTempDir('fake-installer');
  try {
    await writeTree(work, spec);
    const tarFile = join(work, 'archive.tar');
    const gzFile = join(work, 'archive.tar.gz');
    const options = { cwd: work, portable: true, noMtime: true };
    await tar.create({ ...options, gzip: true, file: gzFile }, [spec.baseName]);
    const gz = await readFile(gzFile);
    if (!xz) return { gz };
    await tar.create({ ...options, file: tarFile }, [spec.baseName]);
    await execFileAsync('xz', ['-z', '-T1', '-6', tarFile]);
    return { gz, xz: await readFile(`${tarFile}.xz`) };
  } finally {
    await removeTempDir(work);
  }
}

/** Hex sha256 of bytes. */
export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** True when the system `xz` runs (then `.tar.xz` archives can be built). */
export async function xzAvailable(): Promise<boolean> {
  try {
    await execFileAsync('xz', ['--version']);
    return true;
  } catch {
    return false;
  }
}

async function writeTree(work: string, spec: InstallerSpec): Promise<void> {
  const top = join(work, spec.baseName);
  const lines = spec.files.map((file) => `file:${file.path}`);
  await put(join(top, 'rust-installer-version'), '3\n');
  await put(join(top, 'components'), `${spec.component}\n`);
  await put(join(top, spec.component, 'manifest.in'), `${lines.join('\n')}\n`);
  for (const file of spec.files) {
    const path = join(top, spec.component, ...file.path.split('/'));
    await put(path, file.content);
    if (file.executable) await chmod(path, 0o755);
  }
}

async function put(path: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
}
