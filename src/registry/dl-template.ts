/**
 * @module
 * Expanding the `dl` template of a registry's `config.json` into a download URL.
 */
import { dirPrefix } from './crate-name.ts';

/** The five markers cargo's `crate_url` replaces (cargo-util `registry.rs`). */
const MARKERS = ['{crate}', '{version}', '{prefix}', '{lowerprefix}', '{sha256-checksum}'] as const;

/** What a download URL is built from: the name exactly as in the index line, and its checksum. */
export interface DownloadTarget {
  name: string;
  version: string;
  checksum: string;
}

/**
 * Builds the download URL for a crate the way cargo does. "If none of the markers are present,
 * then the value `/{crate}/{version}/download` is appended to the end" (Cargo Book,
 * registry-index, Index Configuration); like cargo, a trailing slash is kept as it is. One
 * deliberate difference: `+` in versions is sent as `%2B` (cargo sends it raw), because
 * crates.io stores keys that way and a literal `+` can be read as a space by some servers.
 *
 * @example expandDlTemplate('https://static.crates.io/crates', { name: 'serde', version: '1.0.0', checksum: '…' })
 * // 'https://static.crates.io/crates/serde/1.0.0/download'
 */
export function expandDlTemplate(template: string, target: DownloadTarget): string {
  const version = target.version.replaceAll('+', '%2B');
  if (!MARKERS.some((marker) => template.includes(marker))) {
    return `${template}/${target.name}/${version}/download`;
  }
  const prefix = dirPrefix(target.name);
  return template
    .replaceAll('{crate}', target.name)
    .replaceAll('{version}', version)
    .replaceAll('{prefix}', prefix)
    .replaceAll('{lowerprefix}', prefix.toLowerCase())
    .replaceAll('{sha256-checksum}', target.checksum);
}
