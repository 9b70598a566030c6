/**
 * @module
 * Tiny but real `.crate` files: a gzipped tar holding `{name}-{version}/Cargo.toml`, built in
 * memory (tar header by hand from the `tar` package's encoder, gzip by zlib) without any child
 * process, so 200,000 of them take seconds. The index `cksum` is the sha256 of these bytes.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

const BLOCK = 512;
/** cargo's `DETERMINISTIC_MTIME`, as `cargo package` stamps every entry. */
const CRATE_MTIME = new Date(1153704088 * 1000);

/** A packed crate and its checksum. */
export interface PackedCrate {
  bytes: Buffer;
  sha256: string;
}

/** Packs one file, `{name}-{version}/Cargo.toml` with `manifest` as its body. */
export function packTinyCrate(name: string, version: string, manifest: string): PackedCrate {
  const body = Buffer.from(manifest);
  const header = new Header({
    path: `${name}-${version}/Cargo.toml`,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: CRATE_MTIME,
    type: 'File',
    uname: '',
    gname: '',
  });
  const padded = Math.ceil(body.length / BLOCK) * BLOCK;
  // Header, body padded to a block, and the two zero blocks that end an archive.
  const tar = Buffer.alloc(BLOCK + padded + 2 * BLOCK);
  if (header.encode(tar, 0)) throw new Error(`tar path needs a pax header: ${name}-${version}`);
  body.copy(tar, BLOCK);
  const bytes = gzipSync(tar, { level: 6 });
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
