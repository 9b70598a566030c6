/**
 * @module
 * Builds real `.crate` files and crates.io-style index lines for the fake upstream. The crates
 * compile with cargo, so end-to-end tests can prove a build really used what the proxy served.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Header } from 'tar';
import { indexPath } from '../../src/registry/crate-name.ts';

/** The dependency kinds of the index (`deps[].kind`). */
export type FakeDepKind = 'normal' | 'dev' | 'build';

/** One dependency of a fake crate, as written in its Cargo.toml and its index line. */
export interface FakeDep {
  name: string;
  /** A semver requirement such as `0.1` or `=1.0.0`. */
  req: string;
  kind?: FakeDepKind;
}

/** What to publish: one version of one crate. */
export interface FakeCrateSpec {
  name: string;
  version: string;
  deps?: FakeDep[];
  yanked?: boolean;
  /** The index line's `pubtime` (RFC 3339, as crates.io writes it); left out when unset. */
  pubtime?: string;
  /** Size of an incompressible `src/data.bin`, so tests can make large crates. */
  padBytes?: number;
  /** Extra files, by path relative to the crate root (`README.md`, `src/extra.rs`). */
  files?: Record<string, string | Uint8Array>;
}

/**
 * `cargo package` stamps every entry with this mtime (cargo `DETERMINISTIC_MTIME`), so using it
 * keeps our archives byte-for-byte stable and looking like the real thing.
 */
const CRATE_MTIME = new Date(1153704088 * 1000);
export const BLOCK = 512;
const gzipAsync = promisify(gzip);

/**
 * Packs `spec` into a `.crate`: a gzip'd tar with every entry under `{name}-{version}/`. Without
 * `padBytes` (and even with it: the padding is seeded by name and version) the output is
 * identical for identical specs, so checksums are stable across runs.
 */
export async function packCrate(spec: FakeCrateSpec): Promise<Buffer> {
  const root = `${spec.name}-${spec.version}`;
  const entries = [...crateFiles(spec)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const blocks: Buffer[] = [];
  for (const [path, body] of entries) blocks.push(...tarEntry(`${root}/${path}`, body));
  blocks.push(Buffer.alloc(BLOCK * 2));
  // zlib writes MTIME = 0 and a fixed OS byte in the gzip header: no timestamp leaks in.
  return gzipAsync(Buffer.concat(blocks), { level: 9 });
}

/** Hex sha256 of `bytes`: the index `cksum` of a `.crate`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * One index line exactly as crates.io writes it: fixed key order, no trailing newline. Deps are
 * sorted by name and requirements are in the `^0.1` form `cargo publish` sends.
 */
export function indexLine(spec: FakeCrateSpec, checksum: string): string {
  const deps = [...(spec.deps ?? [])]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((dep) => ({
      name: dep.name,
      req: normaliseReq(dep.req),
      features: [],
      optional: false,
      default_features: true,
      target: null,
      kind: dep.kind ?? 'normal',
      registry: null,
    }));
  return JSON.stringify({
    name: spec.name,
    vers: spec.version,
    deps,
    cksum: checksum,
    features: {},
    yanked: spec.yanked ?? false,
    links: null,
    v: 1,
    ...(spec.pubtime !== undefined && { pubtime: spec.pubtime }),
  });
}

/** The index path of a crate (`se/rd/serde`), on the lowercased name like cargo. */
export function indexPathOf(name: string): string {
  return indexPath(name);
}

/** The Rust identifier cargo gives a crate's library: `-` becomes `_`. */
export function crateIdent(name: string): string {
  return name.replace(/-/g, '_');
}

/** The files of a crate, by path relative to `{name}-{version}/`. */
function crateFiles(spec: FakeCrateSpec): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  files.set('Cargo.toml', Buffer.from(cargoToml(spec)));
  files.set('src/lib.rs', Buffer.from(libRs(spec)));
  const buildDeps = depsOf(spec, 'build');
  if (buildDeps.length > 0) files.set('build.rs', Buffer.from(buildRs(buildDeps)));
  if (spec.padBytes !== undefined && spec.padBytes > 0) {
    files.set('src/data.bin', padding(spec, spec.padBytes));
  }
  for (const [path, body] of Object.entries(spec.files ?? {})) files.set(path, Buffer.from(body));
  return files;
}

function depsOf(spec: FakeCrateSpec, kind: FakeDepKind): FakeDep[] {
  return (spec.deps ?? []).filter((dep) => (dep.kind ?? 'normal') === kind);
}

function cargoToml(spec: FakeCrateSpec): string {
  const lines = [
    '[package]',
    `name = ${JSON.stringify(spec.name)}`,
    `version = ${JSON.stringify(spec.version)}`,
    'edition = "2021"',
  ];
  const tables: [string, FakeDepKind][] = [
    ['dependencies', 'normal'],
    ['dev-dependencies', 'dev'],
    ['build-dependencies', 'build'],
  ];
  for (const [table, kind] of tables) {
    const deps = depsOf(spec, kind);
    // The brief promises a [dependencies] table even when it is empty; the others only if used.
    if (deps.length === 0 && kind !== 'normal') continue;
    lines.push('', `[${table}]`, ...deps.map((dep) => `${dep.name} = ${JSON.stringify(dep.req)}`));
  }
  return `${lines.join('\n')}\n`;
}

function libRs(spec: FakeCrateSpec): string {
  const parts = [
    '//! Generated by the cargo-cacher test upstream.',
    '',
    '/// Names this crate and version, so a build can prove which one it linked.',
    "pub fn name() -> &'static str {",
    `    ${JSON.stringify(`${spec.name}-${spec.version}`)}`,
    '}',
  ];
  // Calling into every normal dependency makes the build fail unless it really was linked.
  for (const dep of depsOf(spec, 'normal')) {
    const ident = crateIdent(dep.name);
    parts.push(
      '',
      `/// Calls into \`${dep.name}\`.`,
      `pub fn dep_${ident.toLowerCase()}() -> &'static str {`,
      `    ${ident}::name()`,
      '}',
    );
  }
  return `${parts.join('\n')}\n`;
}

function buildRs(deps: FakeDep[]): string {
  const calls = deps.map((dep) => `    let _ = ${crateIdent(dep.name)}::name();`);
  return [
    'fn main() {',
    '    println!("cargo:rerun-if-changed=build.rs");',
    ...calls,
    '}',
    '',
  ].join('\n');
}

/**
 * Incompressible bytes (AES-CTR keystream) seeded by name and version: large crates stay large
 * after gzip, yet packing the same spec twice still gives the same checksum.
 */
function padding(spec: FakeCrateSpec, size: number): Buffer {
  const key = createHash('sha256').update(`${spec.name}@${spec.version}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** One file of a tar archive, as `cargo package` writes it: header, body, padding to a block. */
export function tarEntry(path: string, body: Buffer): Buffer[] {
  const header = new Header({
    path,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: CRATE_MTIME,
    type: 'File',
    uname: '',
    gname: '',
  });
  const block = Buffer.alloc(BLOCK);
  if (header.encode(block)) throw new Error(`tar path or size needs a pax header: ${path}`);
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  return [block, body, Buffer.alloc(pad)];
}

/** `VersionReq::to_string()` writes a bare `0.1` as `^0.1`; crates.io stores that form. */
function normaliseReq(req: string): string {
  return req
    .split(',')
    .map((part) => part.trim())
    .map((part) => (/^\d/.test(part) ? `^${part}` : part))
    .join(', ');
}
