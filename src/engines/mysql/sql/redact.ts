/**
 * Keeps credentials that appear inside SQL out of the audit trail (DESIGN invariant 2):
 * `CREATE USER … IDENTIFIED BY 'pw'`, `SET PASSWORD = PASSWORD('pw')`, `MASTER_PASSWORD='pw'`,
 * `AES_ENCRYPT(x, 'key')`. Every literal of such a statement is replaced; the statement's
 * shape stays readable. Statements without those words pay for one regex test.
 */
export const MAY_CARRY_SECRET = /IDENTIFIED|PASSWORD|ENCRYPT|DECRYPT|SECRET/i;
/** Every literal, and one the text ends in before its closing quote (a recorded prefix may cut a secret). */
const LITERAL = /'(?:[^'\\]|\\[\s\S]|'')*(?:'|\\?$)|"(?:[^"\\]|\\[\s\S]|"")*(?:"|\\?$)|\b0x[0-9a-f]+\b|\bX'[0-9a-f]*'/gi;

export const REDACTED = "'<redacted>'";

export function redactSecrets(sql: string): string {
  if (!MAY_CARRY_SECRET.test(sql)) return sql;
  return sql.replace(LITERAL, REDACTED);
}
