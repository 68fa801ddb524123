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
import { isIdentifierChar, isKeyword, skipBlank } from './statements.ts';

export interface KillStatement {
  /** The connection id as the client wrote it. */
  readonly id: number;
  /** Character offsets of the id's digits in the statement text. */
  readonly start: number;
  readonly end: number;
}

export function parseKillStatement(sql: string): KillStatement | null {
  let i = skipBlank(sql, 0);
  if (i < 0 || !isKeyword(sql, i, 'KILL')) return null;
  i = skipBlank(sql, i + 4);
  if (i < 0) return null;
  if (isKeyword(sql, i, 'HARD') || isKeyword(sql, i, 'SOFT')) i = skipBlank(sql, i + 4);
  if (i < 0) return null;
  if (isKeyword(sql, i, 'CONNECTION')) i = skipBlank(sql, i + 10);
  else if (isKeyword(sql, i, 'QUERY')) {
    i = skipBlank(sql, i + 5);
    if (i >= 0 && isKeyword(sql, i, 'ID')) return null;
  }
  if (i < 0) return null;
  const start = i;
  while (i < sql.length && isDigit(sql.charCodeAt(i))) i++;
  const end = i;
  // 15 digits stay exact in a double; no connection id is longer.
  if (end === start || end - start > 15 || (i < sql.length && isIdentifierChar(sql.charCodeAt(i))) || sql[i] === '.') return null;
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

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
