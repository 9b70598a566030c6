/**
 * @module
 * The paths rustup asks a dist server for, and what each one is (see docs/ARCHITECTURE.md, "The
 * toolchain cache"): channel manifests and their `.sha256` (a pair; undated names change with
 * each release, dated ones never), component archives under `dist/YYYY-MM-DD/` (immutable),
 * rustup-init and its `.sha256` under `rustup/dist/<triple>/` (changing) or
 * `rustup/archive/<version>/<triple>/` (immutable), `rustup/release-stable.toml`, and anything
 * else below `dist/` or `rustup/`, which is passed through. Pure: no I/O.
 *
 * Every path a client sends is checked first ({@link parseRustupPath}): only plain names below
 * `dist/` or `rustup/`, so nothing can name a file outside the storage root or another host.
 */
import { Errors } from '../errors.ts';

/** A file that is only served together with its `.sha256` sidecar, which it must match. */
export interface PairPaths {
  /** `dist/channel-rust-stable.toml`, `rustup/dist/<triple>/rustup-init`. */
  file: string;
  /** `file` + `.sha256`. */
  sidecar: string;
  /** True for names whose content changes (undated manifests, the current rustup-init). */
  mutable: boolean;
  /** True for channel manifests (their archives' hashes are read from them). */
  manifest: boolean;
}

/** What a requested path is. */
export type RustupPath =
  | { kind: 'pair'; pair: PairPaths; role: 'file' | 'sidecar' }
  | { kind: 'archive'; path: string }
  | { kind: 'release'; path: string }
  | { kind: 'pass-through'; path: string };

/** The storage keys of toolchain files start with this. */
export const TOOLCHAIN_PREFIX = 'toolchains/';

const SEGMENT = /^[A-Za-z0-9_.+-]+$/;
const MAX_PATH = 512;
const MAX_DEPTH = 6;

const DATE = String.raw`\d{4}-\d{2}-\d{2}`;
const MANIFEST = new RegExp(String.raw`^dist/(?:(${DATE})/)?channel-rust-[A-Za-z0-9._-]+\.toml$`);
const ARCHIVE = new RegExp(String.raw`^dist/${DATE}/[A-Za-z0-9_.+-]+\.tar\.(?:gz|xz|zst)$`);
const RUSTUP_INIT = /^rustup\/dist\/[A-Za-z0-9_.-]+\/rustup-init(?:\.exe)?$/;
const RUSTUP_INIT_ARCHIVED =
  /^rustup\/archive\/\d+\.\d+\.\d+[A-Za-z0-9.-]*\/[A-Za-z0-9_.-]+\/rustup-init(?:\.exe)?$/;
export const RELEASE_FILE = 'rustup/release-stable.toml';

/**
 * Checks a request path (`/dist/…` or `/rustup/…`, query string allowed and ignored) and returns
 * it without its leading slash. Anything else (an escape with `..`, an encoded character, an
 * empty segment, another root) is a 400.
 */
export function checkRustupPath(urlPath: string): string {
  const path = (urlPath.split('?')[0] ?? '').replace(/^\//, '');
  const segments = path.split('/');
  const valid =
    path.length > 0 &&
    path.length <= MAX_PATH &&
    segments.length >= 2 &&
    segments.length <= MAX_DEPTH &&
    (segments[0] === 'dist' || segments[0] === 'rustup') &&
    segments.every((part) => SEGMENT.test(part) && part !== '.' && part !== '..');
  if (!valid) {
    throw Errors.CARGO_CACHER_BAD_REQUEST(`not a rustup dist path: ${JSON.stringify(urlPath)}`);
  }
  return path;
}

/** What a checked path (from {@link checkRustupPath}) is. */
export function classifyRustupPath(path: string): RustupPath {
  const sidecar = path.endsWith('.sha256');
  const base = sidecar ? path.slice(0, -'.sha256'.length) : path;
  const pair = pairOf(base);
  if (pair) return { kind: 'pair', pair, role: sidecar ? 'sidecar' : 'file' };
  if (!sidecar && ARCHIVE.test(path)) return { kind: 'archive', path };
  if (path === RELEASE_FILE) return { kind: 'release', path };
  return { kind: 'pass-through', path };
}

/** Checks and classifies a request path in one step. */
export function parseRustupPath(urlPath: string): RustupPath {
  return classifyRustupPath(checkRustupPath(urlPath));
}

/** The pair `file` belongs to, when it is a channel manifest or a rustup-init. */
export function pairOf(file: string): PairPaths | undefined {
  const manifest = MANIFEST.exec(file);
  if (manifest) return makePair(file, manifest[1] === undefined, true);
  if (RUSTUP_INIT.test(file)) return makePair(file, true, false);
  if (RUSTUP_INIT_ARCHIVED.test(file)) return makePair(file, false, false);
  return undefined;
}

/** The storage key of a toolchain file. */
export function toolchainKey(path: string): string {
  return `${TOOLCHAIN_PREFIX}${path}`;
}

/** The dist path of a toolchain key, or `undefined` for another key. */
export function pathOfToolchainKey(key: string): string | undefined {
  return key.startsWith(TOOLCHAIN_PREFIX) ? key.slice(TOOLCHAIN_PREFIX.length) : undefined;
}

/**
 * The dist path of the manifest of a channel as rustup names it: `stable`, `1.90.0`, `1.90`,
 * `nightly`, `nightly-2026-11-01` (dated: `dist/2026-11-01/channel-rust-nightly.toml`).
 */
export function manifestPathOfChannel(channel: string): string {
  const dated = new RegExp(`^(stable|beta|nightly)-(${DATE})$`).exec(channel);
  const path = dated
    ? `dist/${dated[2]}/channel-rust-${dated[1]}.toml`
    : `dist/channel-rust-${channel}.toml`;
  if (!MANIFEST.test(path) || !checkSafe(path)) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(`not a rustup channel: ${JSON.stringify(channel)}`);
  }
  return path;
}

/** The dist path of an archive URL from a manifest (`https://…/dist/2026-11-26/x.tar.xz`). */
export function archivePathOfUrl(url: string): string | undefined {
  let pathname: string;
  try {
    pathname = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const path = pathname.replace(/^\/+/, '');
  return ARCHIVE.test(path) && checkSafe(path) ? path : undefined;
}

const RELEASE_OF_ARCHIVE = new RegExp(
  String.raw`^dist/(${DATE})/[A-Za-z0-9_.+-]*?-(\d+\.\d+\.\d+(?:-(?:beta|alpha)(?:\.\d+)?)?|nightly|beta)(?:-[A-Za-z0-9_.+-]+)?\.tar\.(?:gz|xz|zst)$`,
);

/**
 * The release an archive belongs to, for statistics: `1.99.0 (2026-11-26)`,
 * `nightly (2026-11-01)`; `undefined` for a name that says no version.
 */
export function releaseOfArchive(path: string): string | undefined {
  const match = RELEASE_OF_ARCHIVE.exec(path);
  return match ? `${match[2]} (${match[1]})` : undefined;
}

function makePair(file: string, mutable: boolean, manifest: boolean): PairPaths {
  return { file, sidecar: `${file}.sha256`, mutable, manifest };
}

function checkSafe(path: string): boolean {
  try {
    checkRustupPath(path);
    return true;
  } catch {
    return false;
  }
}
