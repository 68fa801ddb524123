/**
 * The connection id in `KILL` statements (COM_PROCESS_KILL's wire form is codec/process-kill.ts).
 * https://mariadb.com/kb/en/kill/
 *
 * Clients learn a connection's id from the server greeting, which meshgate sends before
 * any upstream connection exists, so the id they hold is meshgate's, not MariaDB's. Drivers
 * and the CLI name it in KILL (the mariadb connector's destroy(), the CLI's Ctrl-C), so the
 * relay must find and replace it. Only the form clients generate is recognised:
 *
 *   KILL [HARD | SOFT] [CONNECTION | QUERY] <decimal id> [;]
 *
 * with whitespace and ordinary comments anywhere. `KILL QUERY ID <query id>`, `KILL USER`,
 * expressions, executable comments and several statements come back null: they go to
 * MariaDB as written, where the id means MariaDB's own (what CONNECTION_ID() returns).
 */
export interface KillStatement {
  /** The connection id as the client wrote it. */
  readonly id: number;
  /** Character offsets of the id's digits in the statement text. */
  readonly start: number;
  readonly end: number;
}

export function parseKillStatement(sql: string): KillStatement | null {
  let i = skipBlank(sql, 0);
  if (i < 0 || !isWord(sql, i, 'KILL')) return null;
  i = skipBlank(sql, i + 4);
  if (i < 0) return null;
  if (isWord(sql, i, 'HARD') || isWord(sql, i, 'SOFT')) i = skipBlank(sql, i + 4);
  if (i < 0) return null;
  if (isWord(sql, i, 'CONNECTION')) i = skipBlank(sql, i + 10);
  else if (isWord(sql, i, 'QUERY')) {
    i = skipBlank(sql, i + 5);
    if (i >= 0 && isWord(sql, i, 'ID')) return null;
  }
  if (i < 0) return null;
  const start = i;
  while (i < sql.length && isDigit(sql.charCodeAt(i))) i++;
  const end = i;
  // 15 digits stay exact in a double; no connection id is longer.
  if (end === start || end - start > 15 || (i < sql.length && isWordChar(sql.charCodeAt(i))) || sql[i] === '.') return null;
  i = skipBlank(sql, i);
  if (i >= 0 && sql[i] === ';') i = skipBlank(sql, i + 1);
  if (i !== sql.length) return null;
  return { id: Number(sql.slice(start, end)), start, end };
}

/**
 * The COM_QUERY payload with the statement's id replaced by `id`. Null when text before the
 * id is not ASCII: then character offsets are not byte offsets, and re-encoding could change
 * a statement that is not UTF-8.
 */
export function replaceKillId(payload: Buffer, sql: string, kill: KillStatement, id: number): Buffer | null {
  for (let i = 0; i < kill.end; i++) if (sql.charCodeAt(i) > 0x7f) return null;
  const digits = String(id);
  const out = Buffer.allocUnsafe(payload.length - (kill.end - kill.start) + digits.length);
  const head = 1 + kill.start;
  payload.copy(out, 0, 0, head);
  out.write(digits, head, 'latin1');
  payload.copy(out, head + digits.length, 1 + kill.end);
  return out;
}

/**
 * Index after whitespace and comments from `i`; -1 inside an executable comment (`/*!`,
 * `/*M!`: its content is SQL, not a comment) or an unterminated one.
 */
function skipBlank(sql: string, i: number): number {
  for (;;) {
    const c = sql.charCodeAt(i);
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) {
      i++;
    } else if (c === 0x2f /* / */ && sql.charCodeAt(i + 1) === 0x2a /* * */) {
      const next = sql.charCodeAt(i + 2);
      if (next === 0x21 /* ! */ || ((next === 0x4d || next === 0x6d) /* M */ && sql.charCodeAt(i + 3) === 0x21)) return -1;
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) return -1;
      i = close + 2;
    } else if (c === 0x23 /* # */ || (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d && isLineCommentSpace(sql.charCodeAt(i + 2)))) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? sql.length : eol + 1;
    } else {
      return i;
    }
  }
}

/** `--` starts a comment only when followed by whitespace, a control character or the end. */
function isLineCommentSpace(c: number): boolean {
  return Number.isNaN(c) || c <= 0x20;
}

function isWord(sql: string, i: number, word: string): boolean {
  if (sql.length - i < word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((sql.charCodeAt(i + k) | 0x20) !== (word.charCodeAt(k) | 0x20)) return false;
  }
  return i + word.length === sql.length || !isWordChar(sql.charCodeAt(i + word.length));
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Characters that continue an unquoted identifier or number. */
function isWordChar(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80;
}
