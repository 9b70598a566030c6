/**
 * @module
 * Reading index files (one JSON object per line). Pure functions, no I/O. Lines are only read
 * here, never re-serialised: the proxy serves index files byte for byte.
 */

/** The wire fields of an index line that cargo-cacher reads (Cargo Book, registry-index). */
export interface IndexLine {
  name: string;
  vers: string;
  cksum: string;
  yanked?: boolean;
}

/** One published version of a crate, in the proxy's own words. */
export interface CrateVersion {
  /** The name exactly as in the index line (original case). */
  name: string;
  version: string;
  /** Hex sha256 of the `.crate` file. */
  checksum: string;
  yanked: boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Parses every well-formed line of an index file. "Lines that fail to parse are skipped"
 * (cargo `IndexSummary::parse`), so a malformed line never hides the others.
 */
export function parseIndexFile(body: Buffer | string): CrateVersion[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const versions: CrateVersion[] = [];
  for (const line of text.split('\n')) {
    const parsed = parseIndexLine(line);
    if (parsed) versions.push(parsed);
  }
  return versions;
}

/** Parses one index line, or returns `undefined` when it is empty or malformed. */
export function parseIndexLine(line: string): CrateVersion | undefined {
  if (line.trim() === '') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isIndexLine(raw)) return undefined;
  return { name: raw.name, version: raw.vers, checksum: raw.cksum, yanked: raw.yanked === true };
}

const VERS_KEY = '"vers":"';

/**
 * The version an index line names, read without parsing the line's JSON when it is written as
 * crates.io writes it: inside a JSON string a quote is escaped, so the text `"vers":"` can only be
 * a key, and only the top-level object has that key (dependencies and features do not). Any
 * other spelling is parsed. `undefined` for a line that names none.
 */
export function versionOfLine(line: string): string | undefined {
  const at = line.indexOf(VERS_KEY);
  if (at !== -1) {
    const start = at + VERS_KEY.length;
    const end = line.indexOf('"', start);
    const version = end === -1 ? '' : line.slice(start, end);
    if (version !== '' && !version.includes('\\')) return version;
  }
  return parseIndexLine(line)?.version;
}

/**
 * Finds a version in an index file. Build metadata is ignored for uniqueness on crates.io
 * ("vers ... build metadata ignored"), but cargo asks for the exact string, so match exactly.
 */
export function findVersion(body: Buffer | string, version: string): CrateVersion | undefined {
  return parseIndexFile(body).find((entry) => entry.version === version);
}

function isIndexLine(raw: unknown): raw is IndexLine {
  if (typeof raw !== 'object' || raw === null) return false;
  const line = raw as Record<string, unknown>;
  return (
    typeof line.name === 'string' &&
    typeof line.vers === 'string' &&
    typeof line.cksum === 'string' &&
    SHA256_HEX.test(line.cksum)
  );
}

/** A dependency kind of an index line; an absent `kind` is `normal`. */
export type DependencyKind = 'normal' | 'build' | 'dev';

/** One entry of an index line's `deps`, in the proxy's words. */
export interface IndexDependency {
  /** The name the depending crate uses: an alias when the dependency is renamed (`package`). */
  name: string;
  /** The crate depended on: `package` when the dependency is renamed, else `name`. */
  crate: string;
  /** The version requirement as written (`^1.0`). */
  req: string;
  kind: DependencyKind;
  /** A `cfg(...)` expression or target triple; `null` for every target. */
  target: string | null;
  optional: boolean;
  /** The index URL of another registry; `null` when the dependency is in this one. */
  registry: string | null;
}

/** One published version with its dependencies. */
export interface CrateVersionWithDeps extends CrateVersion {
  deps: IndexDependency[];
}

/**
 * Parses every well-formed line of an index file with its `deps`, each line's JSON read once.
 * Lines that fail to parse are skipped (as {@link parseIndexFile}); so are dependency entries
 * without a `name` and `req` string, and unknown kinds, which cargo would refuse (an absent or
 * `null` kind is `normal`).
 */
export function parseIndexFileWithDeps(body: Buffer | string): CrateVersionWithDeps[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const versions: CrateVersionWithDeps[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    if (!isIndexLine(raw)) continue;
    versions.push({
      name: raw.name,
      version: raw.vers,
      checksum: raw.cksum,
      yanked: raw.yanked === true,
      deps: readDeps((raw as { deps?: unknown }).deps),
    });
  }
  return versions;
}

const DEPENDENCY_KINDS: ReadonlySet<string> = new Set(['normal', 'build', 'dev']);

function readDeps(raw: unknown): IndexDependency[] {
  if (!Array.isArray(raw)) return [];
  const deps: IndexDependency[] = [];
  for (const entry of raw) {
    const dep = readDep(entry);
    if (dep) deps.push(dep);
  }
  return deps;
}

function readDep(raw: unknown): IndexDependency | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const dep = raw as Record<string, unknown>;
  const { name, req, target, optional, registry } = dep;
  const kind = dep.kind ?? 'normal';
  if (typeof name !== 'string' || typeof req !== 'string') return undefined;
  if (typeof kind !== 'string' || !DEPENDENCY_KINDS.has(kind)) return undefined;
  const renamed = typeof dep.package === 'string' ? dep.package : undefined;
  return {
    name,
    crate: renamed ?? name,
    req,
    kind: kind as DependencyKind,
    target: typeof target === 'string' ? target : null,
    optional: optional === true,
    registry: typeof registry === 'string' ? registry : null,
  };
}
