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
