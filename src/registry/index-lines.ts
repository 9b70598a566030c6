/**
 * @module
 * Rewriting an index file line by line without touching the bytes of the lines it keeps: the
 * one walk behind every view of an index file (the supply-chain policy, the held-only view).
 * Pure, no I/O.
 */

/**
 * What becomes of one line: `true` keeps its bytes, `false` leaves it out (with its own `\n`),
 * a string replaces its content (its line ending stays).
 */
export type LineFate = boolean | string;

const NEWLINE = 0x0a;

/**
 * Applies `fate` to every line of `body` (the text between newlines, without the `\n`; a `\r`
 * of a CRLF ending stays part of the line). Kept lines keep their exact bytes, order and line
 * endings. Returns the very Buffer passed in when every line was kept.
 */
export function mapIndexLines(body: Buffer, fate: (line: string) => LineFate): Buffer {
  const served: Buffer[] = [];
  let copiedTo = 0;
  for (let start = 0; start < body.length; ) {
    const newline = body.indexOf(NEWLINE, start);
    const lineEnd = newline === -1 ? body.length : newline;
    const next = newline === -1 ? body.length : newline + 1;
    const decided = fate(body.toString('utf8', start, lineEnd));
    if (decided !== true) {
      if (start > copiedTo) served.push(body.subarray(copiedTo, start));
      if (decided === false) {
        copiedTo = next;
      } else {
        served.push(Buffer.from(decided, 'utf8'));
        copiedTo = lineEnd;
      }
    }
    start = next;
  }
  if (copiedTo === 0) return body;
  if (copiedTo < body.length) served.push(body.subarray(copiedTo));
  return Buffer.concat(served);
}
