/**
 * @module
 * Merging two copies of one crate's index file (an imported bundle's and the store's) so that no
 * line is ever lost: for a version both list, the newer copy's line wins; a line only one copy
 * has is kept. Kept lines keep their exact bytes (a `\r` of a CRLF ending included). Pure, no I/O.
 */
import { parseIndexLine } from './index-entry.ts';

/** The result of {@link mergeIndexFiles}. */
export interface MergedIndexFile {
  /** The merged file: the newer copy itself (same Buffer) when the older one adds nothing. */
  body: Buffer;
  /** Lines of the older copy that were kept (versions the newer copy lacks, unreadable lines). */
  addedFromOlder: number;
}

/** One line of an index file: its bytes without the `\n`, and the version it lists. */
interface Line {
  bytes: Buffer;
  /** `undefined` for a line that does not parse (cargo skips those; we keep them anyway). */
  version: string | undefined;
}

const NEWLINE = 0x0a;

/**
 * Merges `older` into `newer`. Lines come out in the newer copy's order; a line only the older
 * copy has goes right after the line that precedes it there and both copies list (or, before any
 * such line, right before the first one), so the publish order both copies share is kept. With
 * no version in common, the older copy's lines go at the end. Blank lines of the older copy carry
 * nothing and are dropped; an unreadable line of the older copy is kept unless the newer copy
 * has the same bytes.
 */
export function mergeIndexFiles(newer: Buffer, older: Buffer): MergedIndexFile {
  const newerLines = splitLines(newer);
  const newerVersions = new Set(newerLines.map((line) => line.version));
  const newerUnreadable = new Set(
    newerLines
      .filter((line) => line.version === undefined)
      .map((line) => line.bytes.toString('latin1')),
  );
  const placed = placeOlderLines(splitLines(older), newerVersions, newerUnreadable);
  if (placed.count === 0) return { body: newer, addedFromOlder: 0 };
  return { body: interleave(newerLines, placed), addedFromOlder: placed.count };
}

/** Where the older copy's own lines go, relative to the versions both copies list. */
interface Placement {
  /** Lines before the first shared version (at the end when nothing is shared). */
  leading: Line[];
  /** The first shared version in the older copy's order. */
  firstShared: string | undefined;
  /** Lines following each shared version, in the older copy's order. */
  after: Map<string, Line[]>;
  count: number;
}

function placeOlderLines(
  olderLines: readonly Line[],
  newerVersions: ReadonlySet<string | undefined>,
  newerUnreadable: ReadonlySet<string>,
): Placement {
  const placement: Placement = { leading: [], firstShared: undefined, after: new Map(), count: 0 };
  let previousShared: string | undefined;
  for (const line of olderLines) {
    if (line.version !== undefined && newerVersions.has(line.version)) {
      previousShared = line.version;
      placement.firstShared ??= line.version;
      continue;
    }
    if (!isKeptOlderLine(line, newerUnreadable)) continue;
    placement.count++;
    if (previousShared === undefined) {
      placement.leading.push(line);
      continue;
    }
    const group = placement.after.get(previousShared);
    if (group) group.push(line);
    else placement.after.set(previousShared, [line]);
  }
  return placement;
}

function isKeptOlderLine(line: Line, newerUnreadable: ReadonlySet<string>): boolean {
  if (line.version !== undefined) return true;
  const text = line.bytes.toString('latin1');
  return text.trim() !== '' && !newerUnreadable.has(text);
}

function interleave(newerLines: readonly Line[], placement: Placement): Buffer {
  const out: Buffer[] = [];
  const emit = (line: Line) => out.push(line.bytes, Buffer.of(NEWLINE));
  for (const line of newerLines) {
    const { version } = line;
    if (version !== undefined && version === placement.firstShared) {
      placement.leading.forEach(emit);
      placement.leading = [];
    }
    emit(line);
    if (version === undefined) continue;
    placement.after.get(version)?.forEach(emit);
    placement.after.delete(version);
  }
  placement.leading.forEach(emit);
  return Buffer.concat(out);
}

/** The lines of `body`; a last line without its `\n` counts, the empty tail after one does not. */
function splitLines(body: Buffer): Line[] {
  const lines: Line[] = [];
  for (let start = 0; start < body.length; ) {
    const newline = body.indexOf(NEWLINE, start);
    const end = newline === -1 ? body.length : newline;
    const bytes = body.subarray(start, end);
    lines.push({ bytes, version: parseIndexLine(bytes.toString('utf8'))?.version });
    start = end + 1;
  }
  return lines;
}
