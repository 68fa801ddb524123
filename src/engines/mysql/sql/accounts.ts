/**
 * Statements that change a MariaDB account or its privileges, wherever MariaDB could run
 * them in a text a client sends. MariaDB lets any account change its own password, so a
 * client that could run `SET PASSWORD` through meshgate would own its lease account and
 * could log in without meshgate; none of these statements may pass.
 *
 * The statements (MariaDB's "Account Management SQL Statements"): GRANT, REVOKE, CREATE /
 * ALTER / DROP / RENAME USER, CREATE / DROP ROLE, SET PASSWORD (every form), SET DEFAULT
 * ROLE, SET SESSION AUTHORIZATION; and BINLOG '…', which replays binary-log events that may
 * hold any of them in a form meshgate cannot read. SET ROLE only picks among the roles the
 * account already has, and passes.
 *
 * Where they can hide, and how each is read:
 * - every statement of a multi-statement text, and the inside of executable comments
 *   (`/*!…*\/`, `/*M!…*\/`): read as code, with a lenient TokenReader, in every way MariaDB
 *   could read the quotes (backslash escapes on, off, and on in '…' only under ANSI_QUOTES);
 * - the bodies of routines, triggers and events: GRANT and REVOKE are reserved words, so one
 *   anywhere in code is the statement; CREATE/ALTER/DROP/RENAME USER|ROLE are the statement
 *   unless the text is SHOW … or ALTER TABLE (whose `DROP user` drops a column named user);
 *   SET PASSWORD / SET DEFAULT ROLE are the statement unless the statement they are in is an
 *   UPDATE, INSERT, REPLACE or LOAD DATA, whose SET assigns columns. A statement start this
 *   reader does not see (a handler's, say) only ever makes it stricter;
 * - string and hex literals, which `PREPARE … FROM` and `EXECUTE IMMEDIATE` run, or which
 *   could be assigned to a variable first: each literal (adjacent ones joined, as MariaDB
 *   joins them) is read again as SQL, recursively, in each reading of its escapes. What those
 *   run is one statement, so a literal counts only when it starts as one that can lead to an
 *   account change (its first word, or a label) and has its shape (ShapeCheck): prose that
 *   mentions "grant" passes, and so do binary data and long text, unread.
 * SQL built at run time from expressions (CONCAT, variables filled from tables) cannot be
 * seen in the text; other layers make a changed password useless and detected.
 */
import { ShapeCheck } from './account-shape.ts';
import { matchesInChunks } from './chunked.ts';
import type { ServerFlavor } from './classify.ts';
import { quotedValue, wordLiteral } from './literals.ts';
import { TokenReader, type Token } from './tokens.ts';

export interface AccountChange {
  /** What the text would run: 'SET PASSWORD', 'GRANT', 'CREATE USER', …; 'UNREADABLE' when it cannot be read. */
  readonly statement: string;
  /** Found inside a string or hex literal, not in the text's own code. */
  readonly inLiteral: boolean;
}

/**
 * Every text with an account statement matches (the keywords are ASCII, so any casing; a
 * backslash could spell one inside a literal, and so could two adjacent literals, which
 * MariaDB joins: 'GR' 'ANT …'; a hex or bit literal could hold one); most ordinary
 * statements do not, and pay for this test alone. Digits may come first: `/*!50700GRANT`;
 * so may any character outside ASCII, which single-byte charsets may read as whitespace.
 */
export const MAY_CHANGE_ACCOUNT =
  /(?<![a-z_$])(?:grant|revoke|password|user|role|binlog|authorization)(?![a-z0-9_$])|\\|['"]\s*(?:['"]|\/\*|--|#)|0x[0-9a-f]{20}|x'[0-9a-f]{20}|0b[01]{80}|b'[01]{80}/i;

interface Reading {
  readonly backslashEscapes: boolean;
  readonly doubleQuoteEscapes: boolean;
}
/** MariaDB's default sql_mode, NO_BACKSLASH_ESCAPES, and ANSI_QUOTES (where "…" is an identifier). */
const READINGS: readonly Reading[] = [
  { backslashEscapes: true, doubleQuoteEscapes: true },
  { backslashEscapes: false, doubleQuoteEscapes: false },
  { backslashEscapes: true, doubleQuoteEscapes: false },
];

/** Literals inside literals: deeper than this, one that may hold an account statement is refused. */
const MAX_DEPTH = 8;
/** Characters read at most, over every reading and literal, per character of the text (and a floor). */
const WORK_PER_CHAR = 16;
const WORK_FLOOR = 1 << 16;

const UPDATE_LIKE = new Set(['UPDATE', 'INSERT', 'REPLACE', 'LOAD']);
/** Words after which a new statement starts (compound statements, trigger bodies). */
const OPENERS = new Set(['BEGIN', 'THEN', 'ELSE', 'DO', 'LOOP', 'REPEAT']);
/** A literal is read as SQL when it starts with one of these (or a label). */
const SQL_HEADS = new Set([
  'GRANT', 'REVOKE', 'SET', 'CREATE', 'ALTER', 'DROP', 'RENAME', 'BINLOG', 'PREPARE', 'EXECUTE', 'BEGIN', 'IF', 'CASE',
  'LOOP', 'WHILE', 'REPEAT', 'FOR', 'DECLARE',
]);
const USER_VERBS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['CREATE', new Set(['USER', 'ROLE'])],
  ['DROP', new Set(['USER', 'ROLE'])],
  ['ALTER', new Set(['USER'])],
  ['RENAME', new Set(['USER'])],
]);
const ALTER_TABLE = new Set(['TABLE', 'ONLINE', 'IGNORE']);

/** The account statement `sql` could run, or null. `server` decides which versioned comments run. */
export function accountChange(sql: string, server?: ServerFlavor): AccountChange | null {
  if (typeof sql !== 'string' || !MAY_CHANGE_ACCOUNT.test(sql)) return null;
  return check(sql, server, 0, { left: sql.length * WORK_PER_CHAR + WORK_FLOOR });
}

/**
 * accountChange for a statement of which only a prefix was decoded (`decoded`, the text of
 * `statement`'s first `decodedBytes` bytes): the rest is searched in chunks first, and read
 * whole (`whole()`, the text past the prefix included) only when it may hold one. The search
 * starts a little before the prefix ends, for a keyword cut in two there.
 */
export function accountChangeInBytes(statement: Buffer, decoded: string, decodedBytes: number, whole: () => string, server?: ServerFlavor): AccountChange | null {
  if (statement.length <= decodedBytes) return accountChange(decoded, server);
  if (!MAY_CHANGE_ACCOUNT.test(decoded) && !mayChangeAccountPast(statement, Math.max(0, decodedBytes - 128))) return null;
  return accountChange(whole(), server);
}

/** The pieces of MAY_CHANGE_ACCOUNT for the bytes of a long statement, each searched the fastest way. */
const KEYWORDS = /(?<![a-z_$])(?:grant|revoke|password|user|role|binlog|authorization)(?![a-z0-9_$])/i;
const BINARY_LITERAL = /^(?:0x[0-9a-f]{20}|x'[0-9a-f]{20}|0b[01]{80}|b'[01]{80})/i;
/**
 * At a quote: adjacent literals, or what may be the quoted part of X'…' / B'…' (its letter is
 * checked when found: a pattern starting at x is slow on a text of x's).
 */
const AT_QUOTE = /['"](?:\s*(?:['"]|\/\*|--|#)|[0-9a-f]{20})/gi;

/** MAY_CHANGE_ACCOUNT over `bytes` from `from` on: some ten milliseconds per 16 MiB. */
function mayChangeAccountPast(bytes: Buffer, from: number): boolean {
  if (bytes.indexOf(0x5c /* backslash */, from) !== -1) return true;
  for (const prefix of ['0x', '0X', '0b', '0B']) {
    for (let at = bytes.indexOf(prefix, from, 'latin1'); at !== -1; at = bytes.indexOf(prefix, at + 1, 'latin1')) {
      if (BINARY_LITERAL.test(bytes.toString('latin1', at, at + 82))) return true;
    }
  }
  return matchesInChunks(bytes, from, [KEYWORDS, atQuote]);
}

function atQuote(chunk: string): boolean {
  if (!chunk.includes("'") && !chunk.includes('"')) return false;
  AT_QUOTE.lastIndex = 0;
  for (let m = AT_QUOTE.exec(chunk); m !== null; m = AT_QUOTE.exec(chunk)) {
    const after = m[0].charCodeAt(1);
    // Not hex digits: two literals side by side.
    if (!((after >= 0x30 && after <= 0x39) || ((after | 0x20) >= 0x61 && (after | 0x20) <= 0x66))) return true;
    if (m.index > 0 && BINARY_LITERAL.test(chunk.slice(m.index - 1, m.index + 81))) return true;
    AT_QUOTE.lastIndex = m.index + 1;
  }
  return false;
}

const UNREADABLE = (inLiteral: boolean): AccountChange => ({ statement: 'UNREADABLE', inLiteral });

function check(sql: string, server: ServerFlavor | undefined, depth: number, budget: { left: number }): AccountChange | null {
  const inLiteral = depth > 0;
  const scans = [scan(sql, READINGS[0]!, server)];
  if (scans[0]!.backslash) scans.push(scan(sql, READINGS[1]!, server), scan(sql, READINGS[2]!, server));
  budget.left -= sql.length * scans.length;
  if (budget.left < 0) return UNREADABLE(inLiteral);
  for (const s of scans) {
    if (s.unsure) return UNREADABLE(inLiteral);
    const found = inLiteral ? s.shaped : s.found;
    if (found !== null) return { statement: found, inLiteral };
  }
  const seen = new Set<string>();
  for (const s of scans) {
    for (const literal of s.literals) {
      if (seen.has(literal)) continue;
      seen.add(literal);
      if (depth + 1 >= MAX_DEPTH) return UNREADABLE(true);
      const inner = check(literal, server, depth + 1, budget);
      if (inner !== null) return inner;
    }
  }
  return null;
}

interface Scan {
  /** The account statement found in code, if any. */
  readonly found: string | null;
  /** The first one found that also has the shape of one (in a literal, prose must not count). */
  readonly shaped: string | null;
  /** The value of every literal (adjacent ones joined) in this reading that may be an account statement. */
  readonly literals: readonly string[];
  /** A '\' inside quotes: the other readings may differ. */
  readonly backslash: boolean;
  /** A versioned comment whose running depends on a server version not given. */
  readonly unsure: boolean;
}

/** One reading of `sql`: the first account statement in its code, and its literals. */
function scan(sql: string, reading: Reading, server: ServerFlavor | undefined): Scan {
  const r = new TokenReader(sql, reading.backslashEscapes, server, { lenient: true, doubleQuoteEscapes: reading.doubleQuoteEscapes });
  const literals: string[] = [];
  // Only the few literals that may be an account statement are kept: a dump holds millions.
  const keep = (literal: string) => {
    if (MAY_CHANGE_ACCOUNT.test(literal) && startsAsStatement(literal, server)) literals.push(literal);
  };
  let pending: string | null = null;
  let found: string | null = null;
  const shape = new ShapeCheck();
  // The statement being read: its first two words, and whether a SET clause of it is open.
  let atStart = true;
  let head: string | null = null;
  let second: string | null = null;
  let setClause = false;
  let depth = 0;
  // The two tokens before this one, as words (',' for a top-level comma, null for anything else).
  let previous: string | null = null;
  let beforePrevious: string | null = null;
  // After '.' or '@' a word names something (t.user, @password): it is no keyword.
  let qualifiedAt = -1;
  const startStatement = () => {
    atStart = true;
    head = second = null;
    setClause = false;
  };
  for (;;) {
    const t = r.next();
    if (t === null || t.kind === 'end') {
      if (pending !== null) keep(pending);
      shape.feed(r, t, null);
      return { found, shaped: shape.shaped, literals, backslash: r.backslashInQuote, unsure: t === null };
    }
    const escapes = sql[t.start] === '"' ? reading.doubleQuoteEscapes : reading.backslashEscapes;
    const literal = t.kind === 'string' ? quotedValue(sql, t, escapes) : t.kind === 'word' ? wordLiteral(sql, t, r) : null;
    if (literal !== null) {
      shape.feed(r, t, null);
      // Adjacent literals are one: 'GR' 'ANT' is 'GRANT'.
      pending = (pending ?? '') + literal;
      atStart = false;
      previous = beforePrevious = null;
      continue;
    }
    if (pending !== null) {
      keep(pending);
      pending = null;
    }
    // '?' for a word no rule names (one letter, more than 16, or not starting with one): no copy made.
    // Right after '.' or '@' (nothing between, as sql_lex.cc reads it) a word names something.
    const qualified = t.start === qualifiedAt;
    const word = t.kind !== 'word' || qualified ? null : t.end - t.start < 2 || t.end - t.start > 16 || !isLetter(sql.charCodeAt(t.start)) ? '?' : sql.slice(t.start, t.end).toUpperCase();
    shape.feed(r, t, word);
    qualifiedAt = r.isPunct(t, '.') || r.isPunct(t, '@') ? t.end : -1;
    if (word === null) {
      if (r.isPunct(t, ';')) {
        startStatement();
        depth = 0;
      } else if (r.isPunct(t, '(')) {
        depth++;
      } else if (r.isPunct(t, ')')) {
        depth = Math.max(0, depth - 1);
      }
      if (t.kind !== 'punct') atStart = false;
      beforePrevious = previous;
      previous = r.isPunct(t, ',') && depth === 0 ? ',' : null;
      continue;
    }
    if (atStart) {
      atStart = false;
      head = word;
    } else if (second === null) {
      second = word;
    }
    const statement = accountStatement(word, previous, beforePrevious, head, second, setClause, r.peek(), r);
    if (statement !== null) {
      found ??= statement;
      shape.start(statement, r);
    }
    if (word === 'SET' && depth === 0 && previous !== 'CHARACTER' && !UPDATE_LIKE.has(head ?? '')) setClause = true;
    if (depth === 0 && (OPENERS.has(word) || (word === 'ROW' && previous === 'EACH') || (word === 'FOR' && head === 'SET' && second === 'STATEMENT'))) {
      startStatement();
    }
    beforePrevious = previous;
    previous = word;
  }
}

/** The account statement the word `word` completes, given the words before it; null if none. */
function accountStatement(
  word: string,
  previous: string | null,
  beforePrevious: string | null,
  head: string | null,
  second: string | null,
  setClause: boolean,
  next: Token | null,
  r: TokenReader,
): string | null {
  switch (word) {
    case 'GRANT':
    case 'REVOKE':
      return word;
    case 'BINLOG':
      return next !== null && next.kind === 'string' ? word : null;
    case 'USER':
    case 'ROLE': {
      if (word === 'ROLE' && previous === 'DEFAULT' && beforePrevious === 'SET') return UPDATE_LIKE.has(head ?? '') ? null : 'SET DEFAULT ROLE';
      const verb = previous === 'REPLACE' && beforePrevious === 'OR' ? 'CREATE' : previous;
      if (verb === null || !USER_VERBS.get(verb)?.has(word)) return null;
      if (head === 'SHOW' || (head === 'ALTER' && ALTER_TABLE.has(second ?? ''))) return null;
      return `${verb} ${word}`;
    }
    case 'PASSWORD':
      if (UPDATE_LIKE.has(head ?? '')) return null;
      return previous === 'SET' || (previous === ',' && setClause) ? 'SET PASSWORD' : null;
    case 'AUTHORIZATION':
      return previous === 'SESSION' && beforePrevious === 'SET' && !r.isPunct(next, '=') ? 'SET SESSION AUTHORIZATION' : null;
    default:
      return null;
  }
}

/** The literal's text starts as a statement that could change an account: a word of SQL_HEADS, or a label. */
function startsAsStatement(literal: string, server: ServerFlavor | undefined): boolean {
  // Most start with a plain word: read it without a reader.
  const plain = PLAIN_START.exec(literal);
  if (plain !== null) return SQL_HEADS.has(plain[1]!.toUpperCase()) || (plain[2] === ':' && literal[plain[0].length] !== '=');
  const r = new TokenReader(literal, true, server, { lenient: true });
  const first = r.next();
  if (first === null) return true;
  if (r.wordAmong(first, SQL_HEADS) !== null) return true;
  return (first.kind === 'word' || first.kind === 'quoted') && r.isPunct(r.next(), ':') && !r.isPunct(r.peek(), '=');
}

/** A first word with nothing but whitespace before it (the text goes on with no comment or quote right after it). */
const PLAIN_START = /^[ \t\n\r]*([a-z_$][a-z0-9_$]{0,31})(?![a-z0-9_$'"`#/\-\u0080-\uffff])[ \t\n\r]*(:?)/i;

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

