/**
 * The verb of a statement (SELECT, INSERT, SET, ...) for audit events and policy. Leading
 * comments are skipped, except executable comments, whose inside MariaDB runs as SQL: a
 * client must not hide `/*!DELETE*\/` behind something that looks like a comment. Only the
 * first SCAN_LIMIT characters are read, so a hostile prefix costs nothing; a null verb means
 * "cannot tell" and policy must treat it as the most restrictive case.
 */
import { executableOpener, isDashComment, isSqlSpace } from './lex.ts';
import { skipBlank, splitStatements } from './statements.ts';

/** Which server runs the statement, when known; it decides whether a versioned comment runs. */
export interface ServerFlavor {
  /** MYSQL_VERSION_ID form: 100611 for MariaDB 10.6.11, 80036 for MySQL 8.0.36. */
  readonly version: number;
  readonly mariadb: boolean;
}

/**
 * The flavor a greeting's version string names: `5.5.5-10.11.6-MariaDB-…` (MariaDB's prefix
 * for old clients) or `10.11.6-MariaDB` is MariaDB 101106; `8.0.36` is MySQL 80036.
 * undefined when the string says no version.
 */
export function serverFlavor(serverVersion: string): ServerFlavor | undefined {
  const mariadb = /mariadb/i.test(serverVersion);
  const text = mariadb ? serverVersion.replace(/^5\.5\.5-/, '') : serverVersion;
  const match = /^(\d{1,2})\.(\d{1,2})\.(\d{1,2})(?!\d)/.exec(text);
  if (match === null) return undefined;
  return { version: Number(match[1]) * 10000 + Number(match[2]) * 100 + Number(match[3]), mariadb };
}

const SCAN_LIMIT = 256;
const MAX_VERB = 64;
/**
 * Without a ServerFlavor the upstream is taken to be MariaDB 10.4 or later (older releases
 * are long out of support): it runs five-digit versions below 50700 and six-digit ones up to this.
 */
const ASSUMED_MIN_MARIADB = 100400;

export function statementVerb(sql: string, server?: ServerFlavor): string | null {
  if (typeof sql !== 'string') return null;
  const truncated = sql.length > SCAN_LIMIT;
  const head = truncated ? sql.slice(0, SCAN_LIMIT) : sql;
  const n = head.length;
  let inExecutable = false;
  let i = 0;
  while (i < n) {
    const c = head.charCodeAt(i);
    if (isSqlSpace(c) || c === 0x28 /* ( */) {
      i++;
      continue;
    }
    if (c === 0x23 /* # */ || isDashComment(head, i)) {
      // '--' at the cut-off could be '--x' in the full text: not a comment, so decide on sql.
      if (i + 2 >= n && truncated) return null;
      const nl = head.indexOf('\n', i);
      if (nl === -1) return null;
      i = nl + 1;
      continue;
    }
    const next = head.charCodeAt(i + 1);
    if (inExecutable && c === 0x2a /* * */ && next === 0x2f /* / */) {
      inExecutable = false;
      i += 2;
      continue;
    }
    if (c === 0x2f /* / */ && next === 0x2a /* * */) {
      const opener = executableOpener(head, i);
      // Nested comments inside executable ones are read differently by different servers.
      if (inExecutable) return null;
      if (opener === 0) {
        const close = head.indexOf('*/', i + 2);
        if (close === -1) return null;
        i = close + 2;
        continue;
      }
      const { runs, versionDigits } = executableRuns(head, i + opener, opener === 4, server);
      if (runs === null) return null;
      if (runs) {
        inExecutable = true;
        i += opener + versionDigits;
        continue;
      }
      const close = head.indexOf('*/', i + opener);
      // MariaDB lets a skipped versioned comment hold one comment of its own, so the first
      // '*/' may not be its end.
      if (close === -1 || head.lastIndexOf('/*', close) > i) return null;
      i = close + 2;
      continue;
    }
    if (!isLetter(c)) return null;
    let j = i + 1;
    while (j < n && j - i <= MAX_VERB && isWordChar(head.charCodeAt(j))) j++;
    if (j - i > MAX_VERB || (j === n && truncated)) return null;
    return head.slice(i, j).toUpperCase();
  }
  return null;
}

/**
 * The verb of every statement a text holds (CLIENT_MULTI_STATEMENTS), in order; null for one
 * whose verb cannot be told. Pieces that are only whitespace and comments are no statements.
 * Leading plain comments are skipped however long they are. Where '\' in quotes makes
 * NO_BACKSLASH_ESCAPES split the text otherwise, the verbs of that reading that the default
 * one lacks follow: the list may say more than ran, never less. A stored program's body is
 * split at its ';' too, so its statements are listed (this reader does not parse bodies).
 */
export function statementVerbs(sql: string, server?: ServerFlavor): (string | null)[] {
  if (typeof sql !== 'string') return [];
  // Most texts hold one statement: nothing to split.
  const verbs = verbsOf(sql.includes(';') ? splitStatements(sql, true) : [sql], server);
  if (!sql.includes('\\')) return verbs;
  const counted = new Map<string | null, number>();
  for (const verb of verbs) counted.set(verb, (counted.get(verb) ?? 0) + 1);
  for (const verb of verbsOf(splitStatements(sql, false), server)) {
    const left = counted.get(verb) ?? 0;
    if (left > 0) counted.set(verb, left - 1);
    else verbs.push(verb);
  }
  return verbs;
}

/**
 * statementVerbs of a text known only up to `prefix`, when no ';' follows the prefix: the
 * statements that start in it are then all there are, and the last one's verb is known once
 * the prefix holds enough of it. null when it does not, or when a '\' could make quotes end
 * elsewhere: read the whole text then.
 */
export function statementVerbsOfPrefix(prefix: string, server?: ServerFlavor): (string | null)[] | null {
  if (typeof prefix !== 'string' || prefix.includes('\\')) return null;
  const statements = splitStatements(prefix, true);
  const last = statements.at(-1)!;
  const start = skipBlank(last, 0);
  if (start < 0 || last.length - start <= SCAN_LIMIT) return null;
  return verbsOf(statements, server);
}

function verbsOf(statements: readonly string[], server: ServerFlavor | undefined): (string | null)[] {
  const verbs: (string | null)[] = [];
  for (const statement of statements) {
    const start = skipBlank(statement, 0);
    if (start === statement.length) continue;
    // -1: an executable comment (statementVerb reads into it) or one that never closes.
    verbs.push(statementVerb(start < 0 ? statement : statement.slice(start), server));
  }
  return verbs;
}

/** MySQL 5.7 syntax MariaDB may not know: MariaDB skips `/*!50700` … `/*!99999`, but not `/*M!`. */
const MYSQL_57_FIRST = 50700;
const MYSQL_57_LAST = 99999;

/**
 * Whether the server executes an executable comment whose version digits (if any) start at
 * `at`, following sql_lex.cc: five digits, optionally a sixth, else no version at all.
 * null when that depends on a server version we were not told.
 */
export function executableRuns(
  sql: string,
  at: number,
  mariadbOnly: boolean,
  server: ServerFlavor | undefined,
): { runs: boolean | null; versionDigits: number } {
  let digits = 0;
  while (digits < 6 && isDigit(sql.charCodeAt(at + digits))) digits++;
  if (digits < 5) digits = 0;
  const version = digits === 0 ? null : Number(sql.slice(at, at + digits));
  if (server !== undefined && !server.mariadb) {
    return { runs: !mariadbOnly && (version === null || version <= server.version), versionDigits: digits };
  }
  if (version !== null && !mariadbOnly && version >= MYSQL_57_FIRST && version <= MYSQL_57_LAST) return { runs: false, versionDigits: digits };
  if (server !== undefined) return { runs: version === null || version <= server.version, versionDigits: digits };
  if (version === null || version <= ASSUMED_MIN_MARIADB) return { runs: true, versionDigits: digits };
  return { runs: null, versionDigits: digits };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isWordChar(c: number): boolean {
  return isLetter(c) || isDigit(c) || c === 0x5f;
}
