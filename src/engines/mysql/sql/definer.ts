/**
 * Who owns what a client creates through meshgate. MariaDB makes the creator of a view,
 * routine, trigger or event its DEFINER, and runs it with the definer's rights. Through
 * meshgate the creator is a lease account: short-lived, holding its rights only through the
 * policy's role, which the definer's security context does not activate. So such an object
 * fails at once (a view: 1356), others of the role cannot call it (1370), and once the lease
 * account is dropped it fails for everyone (1449) — even an INSERT into a table whose trigger
 * it owns.
 *
 * So statements creating one are given `DEFINER=CURRENT_ROLE`: the object belongs to the
 * role, which outlives every lease and carries the rights policy granted. MariaDB accepts the
 * session's own current role as definer without SET USER or SUPER.
 *
 * - No DEFINER clause: `DEFINER=CURRENT_ROLE` goes in, where the grammar has it: after
 *   `CREATE [OR REPLACE] [ALGORITHM = …]`, and after `ALTER` in ALTER EVENT (which makes the
 *   caller the definer again). ALTER VIEW without one keeps the view's definer: left alone.
 * - `DEFINER=CURRENT_USER` / `CURRENT_USER()` names the lease account: it becomes CURRENT_ROLE.
 * - Any other DEFINER is left alone: MariaDB's privileges decide, as they would direct.
 *
 * Only where every character before the change is ASCII and the statement's head, up to the
 * object's keyword, was read with certainty (see tokens.ts): then the change cannot move a
 * syntax error or alter any error's text. The edits' offsets are then byte offsets as well.
 * With CLIENT_MULTI_STATEMENTS every top-level statement counts, up to the first one whose
 * end cannot be found without a full parser (a stored program's body, a compound statement).
 * `PREPARE s FROM '…'` and `EXECUTE IMMEDIATE '…'` carry their statement in a string: left
 * alone.
 */
import type { ServerFlavor } from './classify.ts';
import { isSqlSpace } from './lex.ts';
import { TokenReader, type Token } from './tokens.ts';

/** Replace `remove` characters at `at` with `insert` (pure ASCII). */
export interface TextEdit {
  readonly at: number;
  readonly remove: number;
  readonly insert: string;
}

export interface DefinerOptions {
  /** CLIENT_MULTI_STATEMENTS is on: every statement in the text runs, not only the first. */
  readonly multiStatements?: boolean;
  /** The upstream, for versioned comments (`/*!100500 …*\/`); MariaDB 10.4+ when not given. */
  readonly server?: ServerFlavor;
  /** The text is the whole statement, not a decoded prefix of it: its last word is whole too. */
  readonly wholeText?: boolean;
}

export const ROLE_DEFINER = 'DEFINER=CURRENT_ROLE';
const CURRENT_ROLE = 'CURRENT_ROLE';

const NONE: readonly TextEdit[] = Object.freeze([]);

/** Statements that hold no compound body, so their first top-level ';' is their end. */
const SIMPLE = new Set([
  'SELECT', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'USE', 'DROP', 'TRUNCATE', 'RENAME', 'GRANT', 'REVOKE', 'SHOW',
  'DESCRIBE', 'DESC', 'EXPLAIN', 'ANALYZE', 'OPTIMIZE', 'CHECK', 'CHECKSUM', 'REPAIR', 'FLUSH', 'LOCK', 'UNLOCK', 'START',
  'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'DO', 'CALL', 'PREPARE', 'EXECUTE', 'DEALLOCATE', 'WITH', 'VALUES',
  'TABLE', 'HANDLER', 'LOAD', 'KILL',
]);
const LEADING = new Set([...SIMPLE, 'CREATE', 'ALTER', 'SET', 'BEGIN']);
/** Objects with a definer; the last four have a body that may hold ';'. */
const STORED = new Set(['VIEW', 'TRIGGER', 'EVENT', 'PROCEDURE', 'FUNCTION', 'AGGREGATE', 'PACKAGE']);
const CREATE_PLAIN = ['TABLE', 'TEMPORARY', 'DATABASE', 'SCHEMA', 'INDEX', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'USER', 'ROLE', 'SEQUENCE', 'SERVER'];
const CREATE_KINDS = new Set([...STORED, ...CREATE_PLAIN]);
const ALTER_KINDS = new Set(['VIEW', 'EVENT', 'TABLE', 'ONLINE', 'IGNORE', 'DATABASE', 'SCHEMA', 'USER', 'SEQUENCE', 'SERVER', 'PROCEDURE', 'FUNCTION']);
const ALGORITHMS = new Set(['UNDEFINED', 'MERGE', 'TEMPTABLE']);
const SECURITIES = new Set(['DEFINER', 'INVOKER']);
const CURRENT = new Set(['CURRENT_USER', CURRENT_ROLE]);
const CURRENT_USER_CLAUSE = /^CURRENT_USER\s*(?:\(\s*\))?$/i;
/** Cheap test before any reading: most statements create nothing. */
const MAY_DEFINE = /create|alter/i;

/**
 * The edits that make `sql` give its stored objects the session's role as DEFINER, in
 * text order; none when there is nothing to change or it cannot be done with certainty.
 */
export function definerEdits(sql: string, options: DefinerOptions = {}): readonly TextEdit[] {
  return statementPlan(sql, options).edits;
}

/** A statement after the first of a multi-statement text: where MariaDB's text for it begins. */
export interface StatementStart {
  /** Just past the whitespace after the ';' before it (MariaDB strips that whitespace). */
  readonly at: number;
  /** Its first word (past any comments), upper case; null when it starts otherwise (a parenthesis, say). */
  readonly verb: string | null;
}

export interface StatementPlan {
  readonly edits: readonly TextEdit[];
  /**
   * With CLIENT_MULTI_STATEMENTS, where each statement after the first begins, as far as the
   * text is read with certainty (the same reading as the edits): every character before is
   * ASCII, and no statement before has a body that may hold ';'.
   */
  readonly starts: readonly StatementStart[];
}

const NO_PLAN: StatementPlan = Object.freeze({ edits: NONE, starts: Object.freeze([]) });

/** definerEdits, and the statement starts read on the way. */
export function statementPlan(sql: string, options: DefinerOptions = {}): StatementPlan {
  if (typeof sql !== 'string') return NO_PLAN;
  const define = MAY_DEFINE.test(sql);
  if (!define && !(options.multiStatements === true && sql.includes(';'))) return NO_PLAN;
  const escaped = readEdits(sql, true, options);
  if (!escaped.backslashInQuote) return escaped;
  // Where quotes end depends on NO_BACKSLASH_ESCAPES: both readings must agree.
  const plain = readEdits(sql, false, options);
  const starts = sameStarts(escaped.starts, plain.starts) ? escaped.starts : commonStarts(escaped.starts, plain.starts);
  return { edits: sameEdits(escaped.edits, plain.edits) ? escaped.edits : NONE, starts };
}

/** `sql` with `edits` (from definerEdits, in text order) applied. */
export function applyTextEdits(sql: string, edits: readonly TextEdit[]): string {
  let out = '';
  let from = 0;
  for (const edit of edits) {
    out += sql.slice(from, edit.at) + edit.insert;
    from = edit.at + edit.remove;
  }
  return out + sql.slice(from);
}

function readEdits(sql: string, backslashEscapes: boolean, options: DefinerOptions): StatementPlan & { backslashInQuote: boolean } {
  const r = new TokenReader(sql, backslashEscapes, options.server, { whole: options.wholeText === true });
  const edits: TextEdit[] = [];
  const starts: StatementStart[] = [];
  let first = r.next();
  while (first !== null && first.kind !== 'end') {
    if (!statement(r, first, edits) || options.multiStatements !== true) break;
    // statement() stopped just past the ';'.
    let at = r.lastEnd;
    first = r.next();
    // An empty statement (';;') is MariaDB's to judge, untouched.
    if (first === null || first.kind === 'end' || r.isPunct(first, ';')) break;
    while (at < first.start && isSqlSpace(sql.charCodeAt(at))) at++;
    starts.push({ at, verb: first.kind === 'word' ? sql.slice(first.start, first.end).toUpperCase() : null });
  }
  return { edits: edits.length === 0 ? NONE : edits, starts, backslashInQuote: r.backslashInQuote };
}

/**
 * Reads one statement from its first token, adding its edit. True when it ended at a
 * top-level ';' and the next statement can be read; false when reading must stop.
 */
function statement(r: TokenReader, first: Token, edits: TextEdit[]): boolean {
  let t = first;
  for (;;) {
    switch (r.wordAmong(t, LEADING)) {
      case null:
        return false;
      case 'CREATE':
        return create(r, t, edits);
      case 'ALTER':
        return alter(r, t, edits);
      case 'BEGIN':
        // BEGIN [WORK] starts a transaction; BEGIN [NOT ATOMIC] … END is a compound statement.
        return (r.isPunct(r.peek(), ';') || r.isWord(r.peek(), 'WORK')) && skipToEnd(r);
      case 'SET': {
        if (!r.isWord(r.peek(), 'STATEMENT')) return skipToEnd(r);
        r.next();
        const inner = afterFor(r);
        if (inner === null) return false;
        t = inner;
        continue;
      }
      default:
        return skipToEnd(r);
    }
  }
}

function create(r: TokenReader, verb: Token, edits: TextEdit[]): boolean {
  let anchor = verb.end;
  let t = r.next();
  if (r.isWord(t, 'OR')) {
    const replace = r.next();
    if (replace === null || !r.isWord(replace, 'REPLACE')) return false;
    anchor = replace.end;
    t = r.next();
  }
  const head = clauses(r, t, anchor);
  const kind = head === null ? null : r.wordAmong(head.next, CREATE_KINDS);
  if (head === null || kind === null) return false;
  if (!STORED.has(kind)) return head.plain && skipToEnd(r);
  if (head.viewOnly && kind !== 'VIEW') return false;
  if (kind === 'AGGREGATE' && !r.isWord(r.next(), 'FUNCTION')) return false;
  if ((kind === 'FUNCTION' || kind === 'AGGREGATE') && !storedFunction(r)) return false;
  own(head, edits, true);
  return kind === 'VIEW' && skipToEnd(r);
}

function alter(r: TokenReader, verb: Token, edits: TextEdit[]): boolean {
  const head = clauses(r, r.next(), verb.end);
  const kind = head === null ? null : r.wordAmong(head.next, ALTER_KINDS);
  if (head === null || kind === null) return false;
  if (kind === 'VIEW') {
    // Without DEFINER, ALTER VIEW keeps the view's definer: as direct.
    own(head, edits, false);
    return skipToEnd(r);
  }
  if (kind === 'EVENT') {
    if (!head.viewOnly) own(head, edits, true);
    // An event's DO body may hold ';'.
    return false;
  }
  return head.plain && skipToEnd(r);
}

type Definer =
  | { readonly kind: 'none' }
  /** The definer clause names the role already. */
  | { readonly kind: 'role' }
  /** `CURRENT_USER` or `CURRENT_USER()` at [start, end). */
  | { readonly kind: 'user'; readonly start: number; readonly end: number };

interface Head {
  /** Just past the last token before where a DEFINER clause goes. */
  readonly anchor: number;
  readonly definer: Definer;
  /** ALGORITHM or SQL SECURITY came: only VIEW may follow. */
  readonly viewOnly: boolean;
  /** No clause at all. */
  readonly plain: boolean;
  /** The token after the clauses: the object's keyword, when the statement is well formed. */
  readonly next: Token | null;
}

/** `[ALGORITHM = …] [DEFINER = …] [SQL SECURITY …]` from `t`; null when unsure or another definer. */
function clauses(r: TokenReader, t: Token | null, anchor: number): Head | null {
  let viewOnly = false;
  let plain = true;
  if (r.isWord(t, 'ALGORITHM')) {
    const value = r.isPunct(r.next(), '=') ? r.next() : null;
    if (value === null || r.wordAmong(value, ALGORITHMS) === null) return null;
    anchor = value.end;
    viewOnly = true;
    plain = false;
    t = r.next();
  }
  let definer: Definer = { kind: 'none' };
  if (r.isWord(t, 'DEFINER')) {
    plain = false;
    const who = r.isPunct(r.next(), '=') ? r.next() : null;
    const which = who === null ? null : r.wordAmong(who, CURRENT);
    if (who === null || which === null) return null;
    let end = who.end;
    if (r.isPunct(r.peek(), '(')) {
      r.next();
      const close = r.next();
      if (close === null || !r.isPunct(close, ')')) return null;
      end = close.end;
    }
    if (which === CURRENT_ROLE) {
      definer = { kind: 'role' };
    } else {
      // Comments between the words would be removed with them.
      if (!CURRENT_USER_CLAUSE.test(r.sql.slice(who.start, end))) return null;
      definer = { kind: 'user', start: who.start, end };
    }
    t = r.next();
  }
  if (r.isWord(t, 'SQL')) {
    if (!r.isWord(r.next(), 'SECURITY') || r.wordAmong(r.next(), SECURITIES) === null) return null;
    viewOnly = true;
    plain = false;
    t = r.next();
  }
  return { anchor, definer, viewOnly, plain, next: t };
}

function own(head: Head, edits: TextEdit[], insert: boolean): void {
  const { definer } = head;
  if (definer.kind === 'user') edits.push({ at: definer.start, remove: definer.end - definer.start, insert: CURRENT_ROLE });
  else if (definer.kind === 'none' && insert) edits.push({ at: head.anchor, remove: 0, insert: ` ${ROLE_DEFINER}` });
}

/**
 * After `FUNCTION`: a stored function, not a UDF (`CREATE FUNCTION f RETURNS INT SONAME …`,
 * whose grammar has no DEFINER). A stored function's name is qualified or followed by its
 * parameters, or by RETURN in Oracle mode.
 */
function storedFunction(r: TokenReader): boolean {
  let t = r.next();
  if (r.isWord(t, 'IF')) {
    if (!r.isWord(r.next(), 'NOT') || !r.isWord(r.next(), 'EXISTS')) return false;
    t = r.next();
  }
  if (!isName(r, t)) return false;
  t = r.next();
  if (r.isPunct(t, '.')) return isName(r, r.next());
  return r.isPunct(t, '(') || r.isWord(t, 'RETURN');
}

function isName(r: TokenReader, t: Token | null): boolean {
  if (t === null) return false;
  if (t.kind === 'quoted' || t.kind === 'string') return true;
  const c = r.sql.charCodeAt(t.start);
  return t.kind === 'word' && !(c >= 0x30 && c <= 0x39);
}

/** Past the statement's ';'. False at the end of the text or wherever unsure. */
function skipToEnd(r: TokenReader): boolean {
  for (;;) {
    const t = r.next();
    if (t === null || t.kind === 'end') return false;
    if (r.isPunct(t, ';')) return !t.executable;
  }
}

/** `SET STATEMENT var = value, … FOR <statement>`: the statement's first token. */
function afterFor(r: TokenReader): Token | null {
  let depth = 0;
  for (;;) {
    const t = r.next();
    if (t === null || t.kind === 'end' || r.isPunct(t, ';')) return null;
    if (r.isPunct(t, '(')) depth++;
    else if (r.isPunct(t, ')') && --depth < 0) return null;
    else if (depth === 0 && r.isWord(t, 'FOR')) return r.next();
  }
}

function sameStarts(a: readonly StatementStart[], b: readonly StatementStart[]): boolean {
  return a.length === b.length && a.every((start, k) => start.at === b[k]!.at);
}

/** The starts both readings agree on, up to the first where they part. */
function commonStarts(a: readonly StatementStart[], b: readonly StatementStart[]): readonly StatementStart[] {
  let k = 0;
  while (k < a.length && k < b.length && a[k]!.at === b[k]!.at) k++;
  return a.slice(0, k);
}

function sameEdits(a: readonly TextEdit[], b: readonly TextEdit[]): boolean {
  return a.length === b.length && a.every((edit, k) => edit.at === b[k]!.at && edit.remove === b[k]!.remove && edit.insert === b[k]!.insert);
}
