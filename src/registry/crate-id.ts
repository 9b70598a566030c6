/**
 * @module
 * Identity of one crate version, and the storage keys derived from it.
 */
import { dirPrefix } from './crate-name.ts';

/** One version of one crate, as the proxy's own code speaks of it. */
export interface CrateId {
  name: string;
  version: string;
}

/**
 * The storage key of a `.crate` file: `crates/{lowerprefix}/{name}/{name}-{version}.crate`, the
 * layout panamax uses, lowercased because crates.io names are unique case-insensitively.
 */
export function crateKey(id: CrateId): string {
  const name = id.name.toLowerCase();
  return `crates/${dirPrefix(name)}/${name}/${name}-${id.version}.crate`;
}

/** `name@version`, for logs and single-flight keys. */
export function crateLabel(id: CrateId): string {
  return `${id.name.toLowerCase()}@${id.version}`;
}
