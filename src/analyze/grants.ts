/**
 * What a MariaDB role may do, as `SHOW GRANTS FOR role` prints it, and the questions the
 * analysis asks of it: does the role write, is it read-only, which databases and tables can
 * it reach. Pure: mariadb-grants.ts reads the lines from the server.
 */

export interface PrivilegeGrant {
  /** Null: every database (`*.*`). A name may hold MariaDB's `%`/`_` wildcards (`shop\_%`). */
  readonly database: string | null;
  /** Null: every table of the database. */
  readonly table: string | null;
  /** Upper case, column lists dropped: SELECT, INSERT, ALL PRIVILEGES, … */
  readonly privileges: readonly string[];
}

export interface RoleGrants {
  readonly role: string;
  readonly grants: readonly PrivilegeGrant[];
  /** Roles granted to this role (their privileges are its own too). */
  readonly roles: readonly string[];
}

/** Where the analysis got roles' privileges from. */
export interface GrantsView {
  /** `mariadb`: read from the server; `heuristic`: guessed from role names (no --mariadb). */
  readonly source: 'mariadb' | 'heuristic';
  /** Every role read, inherited ones included. */
  readonly roles: ReadonlyMap<string, RoleGrants>;
  /** Roles the policy names that MariaDB does not know. */
  readonly missing: readonly string[];
  /** The tables of each database a grant reaches (read from information_schema). */
  readonly tables: ReadonlyMap<string, readonly string[]>;
}

/** Privileges that change data or schema; a role with any of them is a writing role. */
export const WRITE_PRIVILEGES: ReadonlySet<string> = new Set([
  'ALL', 'ALL PRIVILEGES', 'INSERT', 'UPDATE', 'DELETE', 'DELETE HISTORY', 'CREATE', 'DROP', 'ALTER', 'INDEX', 'REFERENCES',
  'CREATE VIEW', 'TRIGGER', 'CREATE ROUTINE', 'ALTER ROUTINE', 'CREATE TEMPORARY TABLES', 'FILE', 'SUPER', 'GRANT OPTION',
]);
/** What a read-only role may hold and nothing else. */
const READ_PRIVILEGES: ReadonlySet<string> = new Set(['SELECT', 'SHOW VIEW', 'USAGE']);

/** Statement verbs that write (audit `verbs`): the ones a writing role exists for. */
export const WRITE_VERBS: ReadonlySet<string> = new Set([
  'INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'CREATE', 'ALTER', 'DROP', 'TRUNCATE', 'RENAME', 'LOAD', 'GRANT', 'REVOKE', 'CALL', 'DO', 'HANDLER', 'IMPORT',
]);

const PRIVILEGE_LINE = /^GRANT (.+?) ON (?:(?:TABLE|PROCEDURE|FUNCTION|PACKAGE|PACKAGE BODY) )?(\S+) TO /i;
const GRANTEE = / TO (`(?:[^`]|``)*`|'[^']*')(?:@\S+)?(?: WITH .*| IDENTIFIED .*)?$/i;
const ROLE_LINE = /^GRANT ((?:`[^`]*`(?:@`[^`]*`)?|'[^']*')(?:\s*,\s*(?:`[^`]*`|'[^']*'))*) TO /i;

/** One role's `SHOW GRANTS FOR` lines. Routine grants (ON PROCEDURE …) are kept out: they reach no table. */
export function parseShowGrants(role: string, lines: readonly string[]): RoleGrants {
  const grants: PrivilegeGrant[] = [];
  const roles: string[] = [];
  for (const line of lines) {
    // MariaDB lists the grants of the roles granted to this one too, each to its own grantee: those are read as that role's.
    const grantee = GRANTEE.exec(line);
    if (grantee !== null && unquote(grantee[1]!) !== role) continue;
    const privilege = PRIVILEGE_LINE.exec(line);
    if (privilege !== null) {
      if (/ ON (PROCEDURE|FUNCTION|PACKAGE) /i.test(line)) continue;
      const [database, table] = splitScope(privilege[2]!);
      grants.push({ database, table, privileges: splitPrivileges(privilege[1]!) });
      continue;
    }
    const granted = ROLE_LINE.exec(line);
    if (granted !== null) {
      for (const name of granted[1]!.split(',')) roles.push(unquote(name.trim().replace(/@.*$/, '')));
    }
  }
  return { role, grants, roles };
}

/** `SELECT, INSERT (a, b), ALL PRIVILEGES` → ['SELECT', 'INSERT', 'ALL PRIVILEGES']. */
function splitPrivileges(text: string): string[] {
  return text
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((p) => p.trim().replace(/\s+/g, ' ').toUpperCase())
    .filter((p) => p !== '');
}

/** `*.*`, `` `db`.* ``, `` `db`.`t` `` → [database, table], null for `*`. */
function splitScope(scope: string): [string | null, string | null] {
  const match = /^(`(?:[^`]|``)*`|\*|[^.`]+)\.(`(?:[^`]|``)*`|\*|[^.`]+)$/.exec(scope);
  if (match === null) return [null, null];
  const part = (text: string) => (text === '*' ? null : unquote(text));
  return [part(match[1]!), part(match[2]!)];
}

function unquote(text: string): string {
  if (text.startsWith('`') && text.endsWith('`')) return text.slice(1, -1).replaceAll('``', '`');
  if (text.startsWith("'") && text.endsWith("'")) return text.slice(1, -1);
  return text;
}

/** A role's grants with those of every role granted to it, each role once. */
export function effectiveGrants(view: GrantsView, role: string): PrivilegeGrant[] {
  const seen = new Set<string>();
  const out: PrivilegeGrant[] = [];
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const grants = view.roles.get(name);
    if (grants === undefined) return;
    out.push(...grants.grants);
    for (const inherited of grants.roles) visit(inherited);
  };
  visit(role);
  return out;
}

/** Names that say a role only reads; the fallback when MariaDB is not asked. */
const READ_ONLY_NAME = /(^|[_$-])(ro|r|read|reads|readonly|reader|readers|select|viewer|view|views|report|reporting|reports|analytics|analyst)($|[_$-])/i;

/** Writes, reads only, or cannot tell (a role MariaDB does not know). */
export function roleWrites(view: GrantsView, role: string): boolean | null {
  if (view.source === 'heuristic') return !READ_ONLY_NAME.test(role);
  if (!view.roles.has(role)) return null;
  return effectiveGrants(view, role).some((grant) => grant.privileges.some((p) => WRITE_PRIVILEGES.has(p)));
}

/** Holds SELECT somewhere and nothing beyond SELECT, SHOW VIEW and USAGE. */
export function roleReadsOnly(view: GrantsView, role: string): boolean {
  if (view.source === 'heuristic') return READ_ONLY_NAME.test(role);
  if (!view.roles.has(role)) return false;
  const grants = effectiveGrants(view, role);
  const all = grants.flatMap((grant) => grant.privileges);
  return all.includes('SELECT') && all.every((p) => READ_PRIVILEGES.has(p));
}

/** Databases a role's grants name (null: it has global privileges, so every one). */
export function roleDatabases(view: GrantsView, role: string): ReadonlySet<string> | null {
  const names = new Set<string>();
  for (const grant of effectiveGrants(view, role)) {
    if (grant.privileges.every((p) => p === 'USAGE')) continue;
    if (grant.database === null) return null;
    names.add(grant.database);
  }
  return names;
}

/** Whether `role` may SELECT every table of `database` (a database-wide or global SELECT). */
export function roleSelectsAll(view: GrantsView, role: string, database: string): boolean {
  return effectiveGrants(view, role).some(
    (grant) => grant.table === null && (grant.database === null || databaseMatches(grant.database, database)) && grant.privileges.some((p) => p === 'SELECT' || p === 'ALL' || p === 'ALL PRIVILEGES'),
  );
}

/**
 * The tables a role's grants reach, as `db.table`, from the database listings read with
 * the grants; null when it holds global privileges (every table on the server: not listed).
 */
export function roleTables(view: GrantsView, role: string): Set<string> | null {
  const tables = new Set<string>();
  for (const grant of effectiveGrants(view, role)) {
    if (grant.privileges.every((p) => p === 'USAGE')) continue;
    if (grant.database === null) return null;
    if (grant.table !== null) {
      tables.add(`${grant.database}.${grant.table}`);
      continue;
    }
    for (const [database, names] of view.tables) {
      if (databaseMatches(grant.database, database)) for (const name of names) tables.add(`${database}.${name}`);
    }
  }
  return tables;
}

/** A grant's database name against a real one: MariaDB's `%` and `_` wildcards, `\` escaping them. */
export function databaseMatches(pattern: string, database: string): boolean {
  if (!/[%_]/.test(pattern)) return pattern === database;
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (c === '%') source += '.*';
    else if (c === '_') source += '.';
    else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`, 's').test(database);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A GrantsView that knows no grants, for the name heuristic. */
export function heuristicGrants(): GrantsView {
  return { source: 'heuristic', roles: new Map(), missing: [], tables: new Map() };
}
