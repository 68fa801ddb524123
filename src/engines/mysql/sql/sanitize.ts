/**
 * A statement's text with every literal replaced by `?` and every comment dropped, for
 * readers who must not see the data it carries (a trace's `db.query.text`): strings, numbers
 * (with their fraction and exponent), hex and bit literals (`X'…'`, `0x…`, `b'…'`), and
 * introducers (`_utf8mb4'…'`, `N'…'`). Keywords, identifiers, operators, variables and
 * placeholders stay; the code inside an executable comment MariaDB runs stays, sanitized.
 *
 * It reads as MariaDB does (the lenient TokenReader: linear, never throws). Whether '\'
 * escapes inside quotes depends on sql_mode (NO_BACKSLASH_ESCAPES), which a proxy cannot
 * see, so a text with a backslash inside quotes is read both ways: the reading that closes
 * every quote wins, and where both do, only what both read as the same code is shown.
 * Text the reader cannot be sure of (a versioned comment whose running depends on the
 * server's version) ends the result in `?`. A word that starts with a digit is taken for a
 * number, so an identifier such as `2fa_codes` reads `?`, and characters outside ASCII
 * outside quotes are dropped: the result may say less than the statement did, never more.
 */
import { scanSql } from './lex.ts';
import { TokenReader, type Token } from './tokens.ts';

export function sanitizeSql(sql: string): string {
  const escaped = tokensOf(sql, true);
  // Without a backslash inside quotes both readings agree.
  if (!escaped.backslashInQuote) return render(sql, escaped.tokens, escaped.complete, []);
  // A reading that leaves a quote open is not the session's (drivers escape quotes with '\'
  // by default, so `'O\'Brien'` must not be taken as `'O\'` and a stray quote); when both
  // readings close their quotes, whatever is a literal in either is one.
  const escapedOpen = scanSql(sql, true).state === 'string';
  const plainOpen = scanSql(sql, false).state === 'string';
  if (plainOpen && !escapedOpen) return render(sql, escaped.tokens, escaped.complete, []);
  const plain = tokensOf(sql, false);
  if (escapedOpen && !plainOpen) return render(sql, plain.tokens, plain.complete, []);
  return render(sql, escaped.tokens, escaped.complete, plain.tokens);
}

interface Reading {
  readonly tokens: Token[];
  /** The reader read to the end; otherwise it stopped where it could not be sure. */
  readonly complete: boolean;
  readonly backslashInQuote: boolean;
}

function tokensOf(sql: string, backslashEscapes: boolean): Reading {
  const reader = new TokenReader(sql, backslashEscapes, undefined, { lenient: true });
  const tokens: Token[] = [];
  for (;;) {
    const token = reader.next();
    if (token === null || token.kind === 'end') return { tokens, complete: token !== null, backslashInQuote: reader.backslashInQuote };
    tokens.push(token);
  }
}

/**
 * The text of `tokens` with literals as `?`. With `other` (the other reading's tokens), only
 * what both readings take for the same piece of code is shown; anything else is `?`, since it
 * is a literal or a comment in one of them.
 */
function render(sql: string, tokens: readonly Token[], complete: boolean, other: readonly Token[]): string {
  let out = '';
  let lastEnd = -1;
  let o = 0;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const start = token.start;
    let end = token.end;
    let literal = token.kind === 'string';
    if (other.length > 0) {
      while (o < other.length && other[o]!.end <= start) o++;
      const same = other[o];
      if (same === undefined || same.start !== start || same.end !== end || same.kind !== token.kind) literal = true;
    }
    if (!literal && token.kind === 'word') {
      const next = tokens[i + 1];
      if (isDigit(sql.charCodeAt(start))) {
        i = numberEnd(sql, tokens, i);
        end = tokens[i]!.end;
        literal = true;
      } else if (next?.kind === 'string' && next.start === end && introduces(sql, token)) {
        // X'…', b'…', N'…', _latin1'…': one literal.
        i++;
        end = next.end;
        literal = true;
      }
    }
    if (lastEnd !== -1 && start > lastEnd) out += ' ';
    out += literal ? '?' : sql.slice(start, end);
    lastEnd = end;
  }
  if (!complete) out += out.length > 0 ? ' ?' : '?';
  return out;
}

/**
 * The index of the last token of the number starting at tokens[i]: `1.5e-3` reads as the
 * words `1`, `5e` and `3` with `.` and `-` between them, all adjacent. One fraction and one
 * exponent at most, so a long run of them stays linear.
 */
function numberEnd(sql: string, tokens: readonly Token[], i: number): number {
  let last = i;
  let fraction = false;
  let exponent = false;
  for (;;) {
    const current = tokens[last]!;
    const next = tokens[last + 1];
    if (next === undefined || next.start !== current.end) return last;
    const c = sql.charCodeAt(next.start);
    if (current.kind !== 'word') {
      if (next.kind !== 'word') return last;
    } else if (c === 0x2e && !fraction && !exponent) {
      fraction = true;
    } else if ((c === 0x2b || c === 0x2d) && !exponent && (sql.charCodeAt(current.end - 1) | 0x20) === 0x65) {
      exponent = true;
    } else {
      return last;
    }
    last++;
  }
}

/** A word that makes the string right after it one literal: X, B, N or a charset introducer. */
function introduces(sql: string, word: Token): boolean {
  const first = sql.charCodeAt(word.start) | 0x20;
  if (word.end - word.start === 1) return first === 0x78 || first === 0x62 || first === 0x6e;
  return sql.charCodeAt(word.start) === 0x5f;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
