/**
 * @module
 * Tiny but real `.crate` files: a gzipped tar holding `{name}-{version}/Cargo.toml`, built in
 * memory (the test helpers' tar entry, gzip by zlib) without any child process, so 200,000 of
 * them take seconds. The index `cksum` is the sha256 of these bytes.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { BLOCK, tarEntry } from '../../test/helpers/crate-pack.ts';

/** A packed crate and its checksum. */
export interface PackedCrate {
  bytes: Buffer;
  sha256: string;
}

/** Packs one file, `{name}-{version}/Cargo.toml` with `manifest` as its body. */
export function packTinyCrate(name: string, version: string, manifest: string): PackedCrate {
  const entry = tarEntry(`${name}-${version}/Cargo.toml`, Buffer.from(manifest));
  // The entry, then the two zero blocks that end an archive.
  const tar = Buffer.concat([...entry, Buffer.alloc(2 * BLOCK)]);
  const bytes = gzipSync(tar, { level: 6 });
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
