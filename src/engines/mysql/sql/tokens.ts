/**
 * SQL text as MariaDB's lexer (sql/sql_lex.cc) cuts it into tokens, for callers that must
 * read a statement's first words with certainty before changing anything in it. Anything
 * the reader cannot be sure of ends the reading (`next()` gives null):
 *
 * - a character outside ASCII, or NUL, anywhere read so far: the text was decoded as UTF-8
 *   but may be in another charset, where such bytes can swallow a following quote, and an
 *   offset into the text is a byte offset only while every character before it is ASCII;
 * - a nested comment inside an executable one, a line comment inside one, `/*m!`, or a
 *   versioned comment whose running depends on a server version not given;
 * - an unterminated quote or comment, and a word that reaches the end of the text (the
 *   text may be a decoded prefix of a longer statement).
 *
 * Whether '\' escapes inside quotes depends on sql_mode, which a proxy cannot see: the
 * reader follows the reading it is given and reports that a backslash was seen, so the
 * caller can read again the other way and compare.
 *
 * A lenient reader (`{ lenient: true }`) is for callers that must see every word MariaDB
 * could run rather than know an offset for certain: it reads on where the strict one stops.
 * Characters outside ASCII are parts of strings, and outside quotes they separate words
 * (latin1 and other single-byte charsets have whitespace there, 0xA0: a keyword next to one
 * is a keyword to MariaDB; reading every such character as a separator can only find more
 * keywords, never fewer). A word, quote or comment may
 * reach the end of the text (which is then the whole statement), and comments follow
 * sql_lex.cc: a plain comment inside an executable one is skipped to its first `*\/`, a
 * versioned comment that does not run may hold one comment of its own, a line comment runs
 * to the end of its line wherever it is, and `/*m!` is a plain comment. It gives null only
 * for a versioned comment whose running depends on a server version not given.
 */
import { executableRuns, type ServerFlavor } from './classify.ts';
import { executableOpener, indexBetween, isDashComment, isSqlSpace } from './lex.ts';

export type TokenKind =
  /** An unquoted word: keyword, identifier or number ([A-Za-z0-9_$]). */
  | 'word'
  /** A `quoted` identifier. */
  | 'quoted'
  /** A '…' or "…" literal ("…" is an identifier under ANSI_QUOTES). */
  | 'string'
  /** Any other single ASCII character: = ( ) ; . @ , … */
  | 'punct'
  /** The end of the text, outside any comment. */
  | 'end';

export interface Token {
  readonly kind: TokenKind;
  /** [start, end) in the text; an 'end' token is empty. */
  readonly start: number;
  readonly end: number;
  /** Inside an executable comment whose content runs. */
  readonly executable: boolean;
}

/** How a reader reads; the default is the strict reader. */
export interface ReadingOptions {
  readonly lenient?: boolean;
  /** The text is the whole statement, not a prefix: a word may reach its end (lenient readers assume so). */
  readonly whole?: boolean;
  /**
   * Whether '\' escapes inside "…" (lenient readers only; default: as in '…'). Under
   * ANSI_QUOTES "…" is an identifier, where '\' never escapes, while '…' still follows
   * NO_BACKSLASH_ESCAPES: a third way to read the same text.
   */
  readonly doubleQuoteEscapes?: boolean;
}

const SLASH = 0x2f;
const STAR = 0x2a;
const BACKSLASH = 0x5c;
const BACKTICK = 0x60;

export class TokenReader {
  private i = 0;
  private inExecutable = false;
  private peeked: Token | null | undefined = undefined;
  /** A '\' appeared inside a '…' or "…" literal read so far. */
  backslashInQuote = false;
  /** Where the last token `next()` gave ends. */
  lastEnd = 0;

  private readonly lenient: boolean;
  private readonly whole: boolean;
  private readonly doubleQuoteEscapes: boolean;

  constructor(
    readonly sql: string,
    private readonly backslashEscapes: boolean,
    private readonly server?: ServerFlavor,
    options: ReadingOptions = {},
  ) {
    this.lenient = options.lenient === true;
    this.whole = this.lenient || options.whole === true;
    this.doubleQuoteEscapes = options.doubleQuoteEscapes ?? backslashEscapes;
  }

  /** The next token without consuming it. */
  peek(): Token | null {
    if (this.peeked === undefined) this.peeked = this.read();
    return this.peeked;
  }

  next(): Token | null {
    const token = this.peek();
    // null is final: once unsure, the reader stays unsure.
    if (token !== null) {
      this.peeked = undefined;
      this.lastEnd = token.end;
    }
    return token;
  }

  /** The token is a word spelled `word` (ASCII, any case). */
  isWord(token: Token | null, word: string): boolean {
    if (token === null || token.kind !== 'word' || token.end - token.start !== word.length) return false;
    for (let k = 0; k < word.length; k++) {
      if ((this.sql.charCodeAt(token.start + k) | 0x20) !== (word.charCodeAt(k) | 0x20)) return false;
    }
    return true;
  }

  /** The token is the single character `ch`. */
  isPunct(token: Token | null, ch: string): boolean {
    return token !== null && token.kind === 'punct' && this.sql.charCodeAt(token.start) === ch.charCodeAt(0);
  }

  /** Which of `words` the token spells (upper case), or null. */
  wordAmong(token: Token | null, words: ReadonlySet<string>): string | null {
    if (token === null || token.kind !== 'word' || token.end - token.start > 32) return null;
    const upper = this.sql.slice(token.start, token.end).toUpperCase();
    return words.has(upper) ? upper : null;
  }

  private read(): Token | null {
    const sql = this.sql;
    const n = sql.length;
    for (;;) {
      if (this.i >= n) return this.inExecutable && !this.lenient ? null : { kind: 'end', start: n, end: n, executable: false };
      const i = this.i;
      const c = sql.charCodeAt(i);
      if (c === 0 || c >= 0x80) {
        if (!this.lenient) return null;
        if (c >= 0x80) {
          this.i++;
          continue;
        }
      }
      if (isSqlSpace(c)) {
        this.i++;
        continue;
      }
      if (c === 0x23 /* # */ || isDashComment(sql, i)) {
        const nl = sql.indexOf('\n', i);
        const end = nl === -1 ? n : nl + 1;
        if (!this.lenient && (this.inExecutable || !ascii(sql, i, end))) return null;
        this.i = end;
        continue;
      }
      if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
        if (!this.skipComment(i)) return null;
        continue;
      }
      if (this.inExecutable && c === STAR && sql.charCodeAt(i + 1) === SLASH) {
        this.inExecutable = false;
        this.i = i + 2;
        continue;
      }
      if (c === 0x27 /* ' */ || c === 0x22 /* " */ || c === BACKTICK) {
        const end = this.quoteEnd(i, c);
        if (end === -1) return null;
        this.i = end;
        return { kind: c === BACKTICK ? 'quoted' : 'string', start: i, end, executable: this.inExecutable };
      }
      if (isWordChar(c)) {
        let j = i + 1;
        while (j < n && isWordChar(sql.charCodeAt(j))) j++;
        if (j === n && !this.whole) return null;
        this.i = j;
        return { kind: 'word', start: i, end: j, executable: this.inExecutable };
      }
      this.i = i + 1;
      return { kind: 'punct', start: i, end: i + 1, executable: this.inExecutable };
    }
  }

  /** Past the comment opening at i; false when unsure. */
  private skipComment(i: number): boolean {
    if (this.lenient) return this.skipCommentLeniently(i);
    const sql = this.sql;
    if (this.inExecutable) return false;
    const opener = executableOpener(sql, i);
    if (opener === 0) {
      // '/*m!' is a plain comment to MariaDB, but other readers disagree.
      if (sql.charCodeAt(i + 2) === 0x6d && sql.charCodeAt(i + 3) === 0x21) return false;
      const close = sql.indexOf('*/', i + 2);
      if (close === -1 || !ascii(sql, i, close)) return false;
      this.i = close + 2;
      return true;
    }
    const { runs, versionDigits } = executableRuns(sql, i + opener, opener === 4, this.server);
    if (runs === null) return false;
    if (runs) {
      this.inExecutable = true;
      this.i = i + opener + versionDigits;
      return true;
    }
    // A skipped versioned comment may hold a comment of its own (sql_lex.cc consume_comment).
    const close = sql.indexOf('*/', i + opener);
    if (close === -1 || sql.lastIndexOf('/*', close) > i || !ascii(sql, i, close)) return false;
    this.i = close + 2;
    return true;
  }

  /**
   * As sql_lex.cc (MY_LEX_LONG_COMMENT): inside an executable comment or not, a plain comment
   * ends at its first `*\/` and leaves the reader where it was; an executable one that runs
   * makes what follows code up to the next `*\/`; one that does not is skipped with one level
   * of comments inside. A comment that never closes ends the text.
   */
  private skipCommentLeniently(i: number): boolean {
    const sql = this.sql;
    const opener = executableOpener(sql, i);
    let end: number;
    if (opener === 0) {
      end = commentEnd(sql, i + 2, false);
    } else {
      const { runs, versionDigits } = executableRuns(sql, i + opener, opener === 4, this.server);
      if (runs === null) return false;
      if (runs) {
        this.inExecutable = true;
        this.i = i + opener + versionDigits;
        return true;
      }
      end = commentEnd(sql, i + opener, true);
    }
    this.i = end === -1 ? sql.length : end;
    return true;
  }

  /** Index just past the quote closing the one at i, or -1. */
  private quoteEnd(i: number, quote: number): number {
    if (this.lenient) return this.quoteEndLeniently(i, quote);
    const sql = this.sql;
    const n = sql.length;
    let j = i + 1;
    while (j < n) {
      const d = sql.charCodeAt(j);
      if (d === 0 || d >= 0x80) return -1;
      if (d === BACKSLASH && quote !== BACKTICK) {
        this.backslashInQuote = true;
        // Under ANSI_QUOTES "…" is an identifier, where '\' never escapes: too many readings.
        if (quote === 0x22) return -1;
        if (this.backslashEscapes) {
          const escaped = sql.charCodeAt(j + 1);
          if (escaped === 0 || escaped >= 0x80) return -1;
          j += 2;
          continue;
        }
      }
      if (d === quote) {
        if (sql.charCodeAt(j + 1) === quote) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      j++;
    }
    return -1;
  }

  /**
   * As quoteEnd, for any character, jumping from quote to quote (and backslash to backslash)
   * natively: a lenient reader may meet strings of megabytes. An unterminated quote runs to
   * the end of the text.
   */
  private quoteEndLeniently(i: number, quote: number): number {
    const sql = this.sql;
    const q = quote === 0x27 ? "'" : quote === 0x22 ? '"' : '`';
    const escapes = quote !== BACKTICK && (quote === 0x22 ? this.doubleQuoteEscapes : this.backslashEscapes);
    let j = i + 1;
    for (;;) {
      const close = sql.indexOf(q, j);
      const backslash = quote === BACKTICK ? -1 : indexBetween(sql, '\\', j, close === -1 ? sql.length : close);
      if (backslash !== -1) {
        this.backslashInQuote = true;
        // From the first backslash on, character by character: still linear, however many follow.
        if (escapes) return escapedQuoteEnd(sql, backslash, quote);
      }
      if (close === -1) return sql.length;
      if (sql.charCodeAt(close + 1) === quote) {
        j = close + 2;
        continue;
      }
      return close + 1;
    }
  }
}

/** Index just past the quote `quote` closing a quoted text from `j` on, where '\' escapes; its end when none does. */
function escapedQuoteEnd(sql: string, j: number, quote: number): number {
  const n = sql.length;
  while (j < n) {
    const d = sql.charCodeAt(j);
    if (d === BACKSLASH) {
      j += 2;
    } else if (d === quote) {
      if (sql.charCodeAt(j + 1) !== quote) return j + 1;
      j += 2;
    } else {
      j++;
    }
  }
  return n;
}

/**
 * Index just past the `*\/` ending the comment whose content starts at `from`, or -1 when it
 * never closes; `nested`: a `/*` inside opens one comment of its own (sql_lex.cc
 * consume_comment with one recursion).
 */
function commentEnd(sql: string, from: number, nested: boolean): number {
  let j = from;
  for (;;) {
    const close = sql.indexOf('*/', j);
    if (!nested) return close === -1 ? -1 : close + 2;
    const open = sql.indexOf('/*', j);
    if (open === -1 || (close !== -1 && close < open)) return close === -1 ? -1 : close + 2;
    const inner = commentEnd(sql, open + 2, false);
    if (inner === -1) return -1;
    j = inner;
  }
}

function isWordChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24;
}

function ascii(sql: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) {
    const c = sql.charCodeAt(k);
    if (c === 0 || c >= 0x80) return false;
  }
  return true;
}
