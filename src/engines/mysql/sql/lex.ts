/**
 * Just enough of MariaDB's lexer (sql/sql_lex.cc) to know where quotes and comments begin
 * and end: used to find sqlcommenter comments that are really comments, and to place
 * meshgate's own comment where it can neither be swallowed nor close someone else's.
 * Whether '\' escapes inside quotes depends on sql_mode (NO_BACKSLASH_ESCAPES), which a
 * proxy cannot see, so callers that must be certain scan both ways.
 */

export type SqlEndState = 'code' | 'line_comment' | 'string' | 'block_comment';

export interface SqlScan {
  /** Where the text ends: inside an unterminated quote or block comment, or not. */
  readonly state: SqlEndState;
  /** Index just past the last character that is not whitespace and not a ';' in code. */
  readonly cut: number;
  /** Text inserted at `cut` would land inside a line comment (needs a '\n' first). */
  readonly cutInLineComment: boolean;
  /** A '\' appeared inside quotes, so the other sql_mode could lex this differently. */
  readonly backslashInQuote: boolean;
  /** Constructs whose meaning MariaDB and MySQL disagree on (nested comments, NUL bytes). */
  readonly ambiguous: boolean;
}

/** Called with the bounds of each plain block comment's content (between '/*' and '*\/'). */
export type BlockCommentVisitor = (start: number, end: number) => void;

const SLASH = 0x2f;
const STAR = 0x2a;
const BANG = 0x21;
const DASH = 0x2d;
const HASH = 0x23;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;

/** my_isspace for the ASCII range: space, \t, \n, \v, \f, \r. */
export function isSqlSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** `--` starts a comment only before whitespace, a control character or the end. */
export function isDashComment(sql: string, i: number): boolean {
  if (sql.charCodeAt(i) !== DASH || sql.charCodeAt(i + 1) !== DASH) return false;
  if (i + 2 >= sql.length) return true;
  const c = sql.charCodeAt(i + 2);
  return c <= 0x20 || c === 0x7f;
}

/**
 * Index of `char` in `sql` within [from, to), or -1. Bounded, unlike indexOf, which would look
 * on to the end of the text: asked once per quote, that would make reading quadratic.
 */
export function indexBetween(sql: string, char: string, from: number, to: number): number {
  if (to <= from) return -1;
  const at = sql.slice(from, to).indexOf(char);
  return at === -1 ? -1 : from + at;
}

/** Length of the executable-comment opener at i ('/*!' or '/*M!'), or 0. */
export function executableOpener(sql: string, i: number): number {
  if (sql.charCodeAt(i) !== SLASH || sql.charCodeAt(i + 1) !== STAR) return 0;
  const c = sql.charCodeAt(i + 2);
  if (c === BANG) return 3;
  if (c === 0x4d /* M */ && sql.charCodeAt(i + 3) === BANG) return 4;
  return 0;
}

export function scanSql(sql: string, backslashEscapes: boolean, onBlockComment?: BlockCommentVisitor): SqlScan {
  const n = sql.length;
  let cut = 0;
  let cutInLineComment = false;
  let backslashInQuote = false;
  let ambiguous = sql.includes('\0');
  let inExecutable = false;
  let state: SqlEndState | null = null;
  let i = 0;

  // No closures here: one capturing these counters would move them off the stack and slow
  // every iteration (this runs on every statement).
  scan: while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x27 /* ' */ || c === 0x22 /* " */ || c === 0x60 /* ` */) {
      const escapes = backslashEscapes && c !== 0x60;
      let j = i + 1;
      for (;;) {
        if (j >= n) {
          state = 'string';
          break scan;
        }
        const d = sql.charCodeAt(j);
        if (d === BACKSLASH && c !== 0x60) {
          backslashInQuote = true;
          if (escapes) {
            j += 2;
            continue;
          }
        }
        if (d === c) {
          if (sql.charCodeAt(j + 1) === c) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      i = j + 1;
      cut = i;
      cutInLineComment = false;
      continue;
    }
    if (c === HASH || (c === DASH && isDashComment(sql, i))) {
      const nl = sql.indexOf('\n', i);
      const end = nl === -1 ? n : nl;
      cut = end;
      cutInLineComment = true;
      if (nl === -1) {
        state = inExecutable ? 'block_comment' : 'line_comment';
        break;
      }
      i = nl + 1;
      continue;
    }
    if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      const opener = executableOpener(sql, i);
      if (opener > 0) {
        // MariaDB lexes the inside as code; a nested one is something servers disagree on.
        if (inExecutable) ambiguous = true;
        inExecutable = true;
        i += opener;
        cut = i;
        cutInLineComment = false;
        continue;
      }
      if (inExecutable) ambiguous = true;
      const close = sql.indexOf('*/', i + 2);
      if (close === -1) {
        state = 'block_comment';
        break;
      }
      onBlockComment?.(i + 2, close);
      i = close + 2;
      cut = i;
      cutInLineComment = false;
      continue;
    }
    if (inExecutable && c === STAR && sql.charCodeAt(i + 1) === SLASH) {
      inExecutable = false;
      i += 2;
      cut = i;
      cutInLineComment = false;
      continue;
    }
    if (!isSqlSpace(c) && c !== SEMICOLON) {
      cut = i + 1;
      cutInLineComment = false;
    }
    i++;
  }
  state ??= inExecutable ? 'block_comment' : 'code';
  return { state, cut, cutInLineComment, backslashInQuote, ambiguous };
}
