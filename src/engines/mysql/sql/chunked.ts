/**
 * Regular expressions over a long statement's bytes without decoding it whole: a 16 MiB
 * string made at once costs this machine's event loop a tenth of a second, chunks of 64 KiB
 * reuse warm memory. The bytes are read as latin1, one character per byte: the keywords and
 * punctuation searched for are ASCII in every charset a MariaDB client may use.
 */
const CHUNK = 1 << 16;
/** Chunks overlap by this much, so a match across a boundary is still found whole. */
const OVERLAP = 128;

/**
 * Whether any of `tests` (regular expressions, not global, or functions of the text) matches
 * `bytes` from `from` on. A match must fit in OVERLAP characters, but for runs of whitespace:
 * a chunk never ends inside one. Several simple patterns are faster than their alternation,
 * which defeats the engine's scanning.
 */
export function matchesInChunks(bytes: Buffer, from: number, tests: RegExp | readonly (RegExp | ((chunk: string) => boolean))[]): boolean {
  const list = Array.isArray(tests) ? tests : [tests as RegExp];
  for (let at = from; at < bytes.length; at += CHUNK) {
    let end = Math.min(bytes.length, at + CHUNK);
    while (end < bytes.length && isSpace(bytes[end - 1]!)) end++;
    const chunk = bytes.toString('latin1', Math.max(from, at - OVERLAP), Math.min(bytes.length, end + 1));
    for (const test of list) if (typeof test === 'function' ? test(chunk) : test.test(chunk)) return true;
  }
  return false;
}

function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}
