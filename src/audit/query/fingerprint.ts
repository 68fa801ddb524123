/**
 * SQL fingerprints for the digest view: a statement with its literals folded, so the
 * statements a workload runs with different values group as one (ProxySQL's digest_text,
 * pt-query-digest's fingerprint). Folded:
 *
 * - literals to `?`: '…' and "…" strings (with an introducer: _utf8mb4'…', N'…', X'…',
 *   B'…'; adjacent strings, which MariaDB joins into one), numbers (0x…, 0b…, 1.5e-3, .5)
 *   with a sign where the sign can only be one (`= -1`, not `a - 1`), and NULL except after IS;
 * - lists of literals to `(?+)`: IN (1, 2, 3), and the rows of a VALUES list after the first;
 * - comments (a sqlcommenter traceparent differs per statement) and whitespace; the content
 *   of an executable comment (`/*!50000 … *\/`) is code to MariaDB, so it stays;
 * - case: unquoted words and `plain` quoted names are lower-cased, trailing `;` dropped.
 *
 * Quotes are read as with MariaDB's default sql_mode ('\' escapes, "…" is a string); the
 * reading is lenient and linear: an unterminated quote or comment runs to the end, any
 * other character is punctuation. A fingerprint longer than MAX_FINGERPRINT_CHARS is cut
 * and ends in '…' (ProxySQL's query_digests_max_digest_length), and reading stops there.
 * (In this comment `*\/` stands for the end of a comment.)
 */

export const MAX_FINGERPRINT_CHARS = 2048;

/** Words after which a sign starts a number rather than a subtraction. */
const UNARY_AFTER = new Set([
  'select', 'where', 'and', 'or', 'not', 'xor', 'on', 'by', 'values', 'value', 'in', 'set', 'when', 'then', 'else',
  'like', 'between', 'limit', 'offset', 'having', 'return', 'is', 'interval', 'case', 'default', 'div', 'mod', 'if',
  'elseif', 'exists', 'all', 'any', 'some', 'regexp', 'rlike', 'escape', 'distinct', 'to', 'do', 'call',
]);
/** Keywords a `(` after which opens an expression or a list, not a call's arguments. */
const SPACED_BEFORE_PARENTHESIS = new Set([...UNARY_AFTER, 'from', 'join', 'as', 'using', 'into', 'union', 'over', 'partition']);
/** Longest first, so `<=>` is not read as `<=` and `>`. */
const OPERATORS = ['<=>', '->>', '<=', '>=', '<>', '!=', ':=', '||', '&&', '<<', '>>', '->'];

type Kind = 'word' | 'literal' | 'punct';

/**
 * Joins tokens with normalised spacing as they come, folding lists of literals (a `(` is
 * held back while only literals and commas follow it) and VALUES rows that repeat the first
 * one (each row is written, then cut off again when it reads the same); stops at the cap.
 */
class Folder {
  private out = '';
  full = false;
  private lastText = '';
  private lastKind: Kind = 'punct';
  private semicolons = 0;
  private list: { count: number; comma: boolean } | null = null;
  /**
   * After VALUES: waiting for the `first` row, inside a `row` (its parentheses' depth), `after`
   * a row, or after a `comma` that may start another; where the row being read starts (a later
   * one with its comma), and the first row's text.
   */
  private rows: { state: 'first' | 'row' | 'after' | 'comma'; depth: number; start: number; first: string | null } | null = null;

  push(kind: Kind, text: string): void {
    if (this.full) return;
    if (kind === 'punct' && text === ';') {
      if (this.list !== null) this.flushList();
      this.semicolons += 1;
      return;
    }
    if (this.list !== null) {
      const list = this.list;
      if (kind === 'literal' && (list.count === 0 || list.comma)) {
        list.count += 1;
        list.comma = false;
        return;
      }
      if (text === ',' && list.count > 0 && !list.comma) {
        list.comma = true;
        return;
      }
      this.list = null;
      if (text === ')' && list.count > 0 && !list.comma) {
        this.write('(?+)', 'literal');
        return;
      }
      this.writeList(list);
    }
    if (text === '(') {
      this.list = { count: 0, comma: false };
      return;
    }
    this.write(text, kind);
  }

  /** A `(` that turned out not to open a list of literals goes out as it was. */
  private writeList(list: { count: number; comma: boolean }): void {
    this.write('(', 'punct');
    for (let k = 0; k < list.count; k += 1) {
      this.write('?', 'literal');
      if (k < list.count - 1 || list.comma) this.write(',', 'punct');
    }
  }

  private flushList(): void {
    const list = this.list!;
    this.list = null;
    this.writeList(list);
  }

  private write(text: string, kind: Kind): void {
    if (this.full) return;
    while (this.semicolons > 0) {
      this.semicolons -= 1;
      this.append(';', 'punct');
    }
    const at = this.out.length;
    const rows = this.rows;
    if (kind === 'word' && (text === 'values' || text === 'value')) this.rows = { state: 'first', depth: 0, start: -1, first: null };
    else if (rows !== null) {
      const opens = text === '(' || text === '(?+)';
      if (rows.state === 'row') rows.depth += text === '(' ? 1 : text === ')' ? -1 : 0;
      else if (rows.state === 'after' && text === ',') {
        rows.state = 'comma';
        rows.start = at;
      } else if ((rows.state === 'first' || rows.state === 'comma') && opens) {
        if (rows.state === 'first') rows.start = at;
        rows.state = 'row';
        rows.depth = text === '(' ? 1 : 0;
      } else this.rows = null;
    }
    this.append(text, kind);
    if (rows !== null && this.rows === rows && rows.state === 'row' && rows.depth === 0) {
      const row = this.out.slice(rows.start).trimStart();
      rows.state = 'after';
      if (rows.first === null) rows.first = row;
      // `, (…)` the same as the first row says nothing new.
      else if (row === ', ' + rows.first) this.out = this.out.slice(0, rows.start);
    }
  }

  private append(text: string, kind: Kind): void {
    const last = this.lastText;
    const glued =
      this.out === '' ||
      text === ',' || text === ')' || text === ';' || text === '.' ||
      last === '(' || last === '.' || last === '@' ||
      // A call or a column list (`count(*)`, `t(a, b)`), but `in (?+)`, `where (…)`.
      (text.startsWith('(') && this.lastKind === 'word' && !SPACED_BEFORE_PARENTHESIS.has(last));
    const piece = glued ? text : ' ' + text;
    if (this.out.length + piece.length > MAX_FINGERPRINT_CHARS) {
      this.out += ' …';
      this.full = true;
      return;
    }
    this.out += piece;
    this.lastText = text;
    this.lastKind = kind;
  }

  finish(): string {
    // Trailing semicolons are dropped; a list left open is what the text ended with.
    if (this.list !== null) this.flushList();
    return this.out;
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isWordChar = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80;
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isHex = (c: number) => isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);

/** The statement text with its literals, lists, comments, spacing and case folded (see the header). */
export function sqlFingerprint(sql: string): string {
  return new Reader(sql).read();
}

/** One pass over the text, token by token, into a Folder. */
class Reader {
  private readonly folder = new Folder();
  private i = 0;
  private inExecutable = false;
  /** The previous token is an operand (a name, a literal, `)`): a sign after it is a subtraction. */
  private afterOperand = false;
  private afterString = false;
  private lastWord = '';
  private wordBeforeLast = '';

  constructor(private readonly sql: string) {}

  read(): string {
    const { sql, folder } = this;
    const n = sql.length;
    while (this.i < n && !folder.full) {
      const i = this.i;
      const c = sql.charCodeAt(i);
      if (isSpace(c)) this.i += 1;
      else if (c === 0x23 /* # */ || (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d && (i + 2 >= n || sql.charCodeAt(i + 2) <= 0x20 || sql.charCodeAt(i + 2) === 0x7f))) {
        const nl = sql.indexOf('\n', i);
        this.i = nl === -1 ? n : nl + 1;
      } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) this.comment();
      else if (this.inExecutable && c === 0x2a && sql.charCodeAt(i + 1) === 0x2f) {
        this.inExecutable = false;
        this.i += 2;
      } else if (c === 0x27 || c === 0x22) {
        this.i = quoteEnd(sql, i, c, true);
        this.literal(true);
      } else if (c === 0x60) this.quotedName();
      else if (!this.number(c) && !this.word(c)) {
        if (c === 0x3f /* ? */) {
          this.i += 1;
          this.literal(false);
          continue;
        }
        let text = sql[i]!;
        for (const op of OPERATORS) {
          if (sql.startsWith(op, i)) {
            text = op;
            break;
          }
        }
        this.i += text.length;
        this.emit('punct', text, text === ')');
      }
    }
    return folder.finish();
  }

  private emit(kind: Kind, text: string, operand: boolean): void {
    this.folder.push(kind, text);
    this.afterOperand = operand;
    this.afterString = false;
    this.wordBeforeLast = kind === 'word' ? this.lastWord : '';
    this.lastWord = kind === 'word' ? text : '';
  }

  private literal(fromString: boolean): void {
    // 'a' 'b' is one string to MariaDB.
    if (!(fromString && this.afterString)) this.emit('literal', '?', true);
    this.afterString = fromString;
  }

  /** A plain comment is skipped; an executable one's content is read as code up to its end. */
  private comment(): void {
    const { sql, i } = this;
    const opener = sql.charCodeAt(i + 2) === 0x21 ? 3 : sql.charCodeAt(i + 2) === 0x4d && sql.charCodeAt(i + 3) === 0x21 ? 4 : 0;
    if (opener > 0 && !this.inExecutable) {
      this.inExecutable = true;
      let digits = 0;
      while (digits < 6 && isDigit(sql.charCodeAt(i + opener + digits))) digits += 1;
      this.i = i + opener + (digits >= 5 ? digits : 0);
      return;
    }
    const close = sql.indexOf('*/', i + 2);
    this.i = close === -1 ? sql.length : close + 2;
  }

  private quotedName(): void {
    const { sql, i } = this;
    const end = quoteEnd(sql, i, 0x60, false);
    const closed = end - 1 > i && sql.charCodeAt(end - 1) === 0x60;
    const name = sql.slice(i + 1, closed ? end - 1 : end);
    this.i = end;
    // A plain name reads the same quoted or not; any other stays quoted as written.
    if (/^[A-Za-z_$][\w$]*$/.test(name)) this.emit('word', name.toLowerCase(), true);
    else this.emit('word', `\`${name}\``, true);
  }

  /** A number, with a sign where it can only be one; false when none starts here. */
  private number(c: number): boolean {
    const { sql, i } = this;
    const signed = (c === 0x2d || c === 0x2b) && !this.afterOperand;
    const numberAt = signed ? skipSpace(sql, i + 1) : i;
    if (!startsNumber(sql, numberAt, signed || !this.afterOperand)) return false;
    const end = numberEnd(sql, numberAt);
    if (end < sql.length && isWordChar(sql.charCodeAt(end)) && !signed) {
      // 1abc is a name to MariaDB (a name may start with digits).
      const wordEnd = wordEndFrom(sql, end);
      this.emit('word', sql.slice(i, wordEnd).toLowerCase(), true);
      this.i = wordEnd;
      return true;
    }
    this.i = end;
    this.literal(false);
    return true;
  }

  /** A word: a keyword or a name, NULL, or the introducer of a literal; false when none starts here. */
  private word(c: number): boolean {
    if (!isWordChar(c)) return false;
    const { sql, i } = this;
    const end = wordEndFrom(sql, i);
    const word = sql.slice(i, end).toLowerCase();
    // An introducer makes the string after it one literal: N'…', X'…', B'…', _utf8mb4 '…'.
    const next = sql.charCodeAt(end);
    const quoteAt = word.startsWith('_') ? skipSpace(sql, end) : end;
    const quote = sql.charCodeAt(quoteAt);
    if ((quote === 0x27 || quote === 0x22) && (word.startsWith('_') || ((word === 'n' || word === 'x' || word === 'b') && (next === 0x27 || next === 0x22)))) {
      this.i = quoteEnd(sql, quoteAt, quote, true);
      this.literal(true);
      return true;
    }
    this.i = end;
    if (word === 'null' && !(this.lastWord === 'is' || (this.lastWord === 'not' && this.wordBeforeLast === 'is'))) this.literal(false);
    else this.emit('word', word, !UNARY_AFTER.has(word));
    return true;
  }
}

function skipSpace(sql: string, i: number): number {
  while (i < sql.length && isSpace(sql.charCodeAt(i))) i += 1;
  return i;
}

function wordEndFrom(sql: string, i: number): number {
  while (i < sql.length && isWordChar(sql.charCodeAt(i))) i += 1;
  return i;
}

/** A number starts at i: a digit, or '.' and a digit where a '.' cannot join two names. */
function startsNumber(sql: string, i: number, dotMayStart: boolean): boolean {
  const c = sql.charCodeAt(i);
  if (isDigit(c)) return true;
  return c === 0x2e && dotMayStart && isDigit(sql.charCodeAt(i + 1));
}

/** Index just past the number starting at i: 0x1F, 0b101, 12, 1.5, .5, 1e-3. */
function numberEnd(sql: string, i: number): number {
  const n = sql.length;
  const second = sql.charCodeAt(i + 1) | 0x20;
  if (sql.charCodeAt(i) === 0x30 && second === 0x78 && isHex(sql.charCodeAt(i + 2))) {
    let j = i + 2;
    while (j < n && isHex(sql.charCodeAt(j))) j += 1;
    return j;
  }
  if (sql.charCodeAt(i) === 0x30 && second === 0x62 && (sql.charCodeAt(i + 2) === 0x30 || sql.charCodeAt(i + 2) === 0x31)) {
    let j = i + 2;
    while (j < n && (sql.charCodeAt(j) === 0x30 || sql.charCodeAt(j) === 0x31)) j += 1;
    return j;
  }
  let j = i;
  while (j < n && isDigit(sql.charCodeAt(j))) j += 1;
  if (sql.charCodeAt(j) === 0x2e) {
    j += 1;
    while (j < n && isDigit(sql.charCodeAt(j))) j += 1;
  }
  if ((sql.charCodeAt(j) | 0x20) === 0x65) {
    const sign = sql.charCodeAt(j + 1) === 0x2d || sql.charCodeAt(j + 1) === 0x2b ? 1 : 0;
    if (isDigit(sql.charCodeAt(j + 1 + sign))) {
      j += 1 + sign;
      while (j < n && isDigit(sql.charCodeAt(j))) j += 1;
    }
  }
  return j;
}

/** Index just past the quote closing the one at i (doubled quotes, and '\' where it escapes); the text's end when none does. */
function quoteEnd(sql: string, i: number, quote: number, backslashEscapes: boolean): number {
  const n = sql.length;
  let j = i + 1;
  while (j < n) {
    const d = sql.charCodeAt(j);
    if (d === 0x5c && backslashEscapes) {
      j += 2;
    } else if (d === quote) {
      if (sql.charCodeAt(j + 1) !== quote) return j + 1;
      j += 2;
    } else {
      j += 1;
    }
  }
  return n;
}
