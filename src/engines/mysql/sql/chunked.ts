/**
 * A regular expression over a long statement's bytes without decoding it whole: a 16 MiB
 * string made at once costs this machine's event loop a tenth of a second, chunks of 64 KiB
 * reuse warm memory. The bytes are read as latin1, one character per byte: the keywords and
 * punctuation searched for are ASCII in every charset a MariaDB client may use.
 */
const CHUNK = 1 << 16;
/** Chunks overlap by this much, so a match across a boundary is still found whole. */
const OVERLAP = 128;

/**
 * Whether `pattern` (not global) matches `bytes` from `from` on. A match must fit in OVERLAP
 * characters, but for runs of whitespace: a chunk never ends inside one.
 */
export function matchesInChunks(bytes: Buffer, from: number, pattern: RegExp): boolean {
  for (let at = from; at < bytes.length; at += CHUNK) {
    let end = Math.min(bytes.length, at + CHUNK);
    while (end < bytes.length && isSpace(bytes[end - 1]!)) end++;
    if (pattern.test(bytes.toString('latin1', Math.max(from, at - OVERLAP), Math.min(bytes.length, end + 1)))) return true;
  }
  return false;
}

function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}
