/**
 * @module
 * The `.sha256` sidecar files of static.rust-lang.org: one line, `<hex>  <file name>` (the name
 * sometimes marked binary with `*`). Pure.
 */
import { createHash } from 'node:crypto';

const LINE = /^([0-9a-fA-F]{64})(?:[ \t]+\*?(\S+))?[ \t]*\r?$/;

/** The sha256 a sidecar states (lower case), or `undefined` when the text is not a sidecar. */
export function parseSidecar(text: Buffer | string): string | undefined {
  const first = text.toString('utf8').split('\n')[0] ?? '';
  return LINE.exec(first)?.[1]?.toLowerCase();
}

/** A sidecar for `fileName`, as static.rust-lang.org writes them. */
export function formatSidecar(sha256: string, fileName: string): string {
  return `${sha256}  ${fileName}\n`;
}

/** Hex sha256 of bytes held in memory (manifests, sidecars). */
export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
