/**
 * @module
 * Crate names and where their index files live. Pure functions, no I/O.
 */

/**
 * Cargo Book, registry-index "Name restrictions": ASCII alphanumerics, `-` and `_`, starting with
 * a letter. crates.io caps names at 64 characters; we allow the same. Anything else is rejected
 * before it can reach a path or an upstream URL.
 */
const CRATE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** True when `name` is a crate name cargo could ask for. */
export function isValidCrateName(name: string): boolean {
  return CRATE_NAME.test(name);
}

/**
 * The index path of a crate, as cargo's `make_dep_path(name, prefix_only = false)` builds it:
 * `1/{n}`, `2/{n}`, `3/{c}/{n}`, or `{ab}/{cd}/{n}`. Cargo lowercases names before calling it
 * ("For index files, `dep_name` must have had `to_lowercase` called on it"), so we do too.
 *
 * @example indexPath('Serde') // 'se/rd/serde'
 */
export function indexPath(name: string): string {
  const lower = name.toLowerCase();
  return `${dirPrefix(lower)}/${lower}`;
}

/**
 * The directory part of {@link indexPath} for a name, without lowercasing it: cargo's
 * `make_dep_path(name, prefix_only = true)`, which the `{prefix}` dl marker uses on the
 * original-case name.
 */
export function dirPrefix(name: string): string {
  switch (name.length) {
    case 1:
      return '1';
    case 2:
      return '2';
    case 3:
      return `3/${name.slice(0, 1)}`;
    default:
      return `${name.slice(0, 2)}/${name.slice(2, 4)}`;
  }
}

/**
 * Parses the path below the index root (`se/rd/serde`) into the crate name it names,
 * or `undefined` when it is not a well-formed index path. The prefix directories must be exactly
 * the ones cargo would compute, so no two paths name the same file.
 */
export function crateNameFromIndexPath(path: string): string | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (!isValidCrateName(name)) return undefined;
  // Cargo only ever asks for lowercase paths; any other spelling is not a file of the index.
  return indexPath(name) === path ? name : undefined;
}
