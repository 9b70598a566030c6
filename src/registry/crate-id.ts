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

/** Reads a {@link crateLabel} (`name@version`) back into the crate it names. */
export function parseCrateLabel(label: string): CrateId {
  const at = label.lastIndexOf('@');
  return { name: label.slice(0, at), version: label.slice(at + 1) };
}

/**
 * Reads a {@link crateKey} back into the crate it stores (name lowercased), or `undefined` for
 * keys of another shape.
 */
export function parseCrateKey(key: string): CrateId | undefined {
  const match = /^crates\/(?:[^/]+\/){1,2}([^/]+)\/([^/]+)\.crate$/.exec(key);
  if (!match) return undefined;
  const [, name, file] = match as unknown as [string, string, string];
  if (!file.startsWith(`${name}-`)) return undefined;
  const id = { name, version: file.slice(name.length + 1) };
  return crateKey(id) === key ? id : undefined;
}
