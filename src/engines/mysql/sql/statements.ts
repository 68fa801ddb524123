/**
 * The statements of a COM_QUERY text that holds several (CLIENT_MULTI_STATEMENTS), and the
 * small token readers the statement parsers here share. Splitting follows quotes and
 * comments as lex.ts does.
 */
import { executableOpener, indexBetween, isDashComment, isSqlSpace } from './lex.ts';

/**
 * The text of each top-level statement, without its ';', as MariaDB would cut it when '\'
 * does (`backslashEscapes`) or does not escape inside quotes: which one applies depends on
 * sql_mode, which a proxy cannot see, so callers that must be sure read both. A text that ends
 * inside a quote or comment keeps that tail as its last statement: MariaDB runs the
 * statements before it, then fails on it. The inside of an executable comment is code.
 */
export function splitStatements(sql: string, backslashEscapes: boolean): string[] {
  const out: string[] = [];
  const n = sql.length;
  let start = 0;
  let inExecutable = false;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x27 /* ' */ || c === 0x22 /* " */ || c === 0x60 /* ` */) {
      const end = quoteEnd(sql, i, backslashEscapes && c !== 0x60);
      i = end === -1 ? n : end;
    } else if (c === 0x23 /* # */ || isDashComment(sql, i)) {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
    } else if (c === 0x2f /* / */ && sql.charCodeAt(i + 1) === 0x2a /* * */) {
      const opener = executableOpener(sql, i);
      if (opener > 0) {
        inExecutable = true;
        i += opener;
        continue;
      }
      const close = sql.indexOf('*/', i + 2);
      i = close === -1 ? n : close + 2;
    } else if (inExecutable && c === 0x2a && sql.charCodeAt(i + 1) === 0x2f) {
      inExecutable = false;
      i += 2;
    } else if (c === 0x3b /* ; */) {
      out.push(sql.slice(start, i));
      start = ++i;
    } else {
      i++;
    }
  }
  out.push(sql.slice(start));
  return out;
}

/**
 * Index just past the quote that starts at `i`, or -1 when it never closes. Jumps from quote
 * to quote (and backslash to backslash) natively: a string may be megabytes long.
 */
export function quoteEnd(sql: string, i: number, backslashEscapes: boolean): number {
  const q = sql[i]!;
  let j = i + 1;
  for (;;) {
    const close = sql.indexOf(q, j);
    if (close === -1) return -1;
    if (backslashEscapes && indexBetween(sql, '\\', j, close) !== -1) return quoteEndByChar(sql, j, q.charCodeAt(0));
    if (sql[close + 1] !== q) return close + 1;
    j = close + 2;
  }
}

/** quoteEnd from `j` on where '\' escapes, character by character: linear however many '\' there are. */
function quoteEndByChar(sql: string, j: number, q: number): number {
  while (j < sql.length) {
    const d = sql.charCodeAt(j);
    if (d === 0x5c /* \ */) {
      j += 2;
    } else if (d === q) {
      if (sql.charCodeAt(j + 1) !== q) return j + 1;
      j += 2;
    } else {
      j++;
    }
  }
  return -1;
}

/**
 * Index after whitespace and plain comments from `i`; -1 at an executable comment (its
 * inside is code this reader does not follow) or a comment that never closes.
 */
export function skipBlank(sql: string, i: number): number {
  for (;;) {
    const c = sql.charCodeAt(i);
    if (isSqlSpace(c)) {
      i++;
    } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      if (executableOpener(sql, i) > 0) return -1;
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) return -1;
      i = close + 2;
    } else if (c === 0x23 || isDashComment(sql, i)) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? sql.length : eol + 1;
    } else {
      return i;
    }
  }
}

/** The keyword `word` at `i` (any case, not followed by an identifier character). */
export function isKeyword(sql: string, i: number, word: string): boolean {
  if (sql.length - i < word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((sql.charCodeAt(i + k) | 0x20) !== (word.charCodeAt(k) | 0x20)) return false;
  }
  return !isIdentifierChar(sql.charCodeAt(i + word.length));
}

/**
 * An identifier at `i`: unquoted, or in backticks ("…" is a string unless sql_mode says
 * ANSI_QUOTES, which a proxy cannot see, so it is not taken). Null when there is none.
 */
export function readIdentifier(sql: string, i: number): { readonly name: string; readonly end: number } | null {
  if (sql.charCodeAt(i) === 0x60) {
    const end = quoteEnd(sql, i, false);
    if (end === -1 || end - i < 3) return null;
    return { name: sql.slice(i + 1, end - 1).replaceAll('``', '`'), end };
  }
  let j = i;
  while (j < sql.length && isIdentifierChar(sql.charCodeAt(j))) j++;
  if (j === i) return null;
  return { name: sql.slice(i, j), end: j };
}

/** Characters that continue an unquoted identifier or number. */
export function isIdentifierChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80;
}
