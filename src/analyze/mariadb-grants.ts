/**
 * Reads the grants of the roles a policy names from MariaDB, through an administrative
 * account (`--mariadb mysql://admin@host:3306/`): `SHOW GRANTS FOR` each role and every role
 * granted to it, then the tables of each database those grants reach. Read-only: it runs
 * SHOW and SELECT, nothing else.
 */
import mysql from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { mgError } from '../errors/index.ts';
import { databaseMatches, parseShowGrants, type GrantsView, type RoleGrants } from './grants.ts';

/** MariaDB: "There is no such grant defined for user" (a role or user that does not exist). */
const ER_NONEXISTING_GRANT = 1141;
/** Enough for any real policy; a cycle of role grants cannot make it loop. */
const MAX_ROLES = 1000;

export async function readMariadbGrants(url: string, roles: readonly string[]): Promise<GrantsView> {
  let connection: Connection;
  try {
    connection = await mysql.createConnection({ uri: url, connectTimeout: 10_000 });
  } catch (error) {
    throw mgError('MG_UPSTREAM_UNAVAILABLE', `cannot connect to MariaDB at ${redactUrl(url)} to read role grants (${(error as Error).message}): check --mariadb (mysql://USER[:PASSWORD]@HOST:PORT/) and that the account may run SHOW GRANTS`, error);
  }
  try {
    const read = new Map<string, RoleGrants>();
    const missing: string[] = [];
    const queue = [...new Set(roles)];
    while (queue.length > 0 && read.size < MAX_ROLES) {
      const role = queue.shift()!;
      if (read.has(role) || missing.includes(role)) continue;
      const lines = await showGrants(connection, role);
      if (lines === null) {
        missing.push(role);
        continue;
      }
      const grants = parseShowGrants(role, lines);
      read.set(role, grants);
      queue.push(...grants.roles);
    }
    const tables = await tablesOf(connection, [...read.values()]);
    return { source: 'mariadb', roles: read, missing, tables };
  } catch (error) {
    if ((error as { code?: unknown }).code !== undefined && typeof (error as { errno?: unknown }).errno === 'number') {
      throw mgError('MG_UPSTREAM_REFUSED', `MariaDB refused to show grants (${(error as Error).message}): the --mariadb account needs SELECT on the mysql schema (an admin account has it)`, error);
    }
    throw error;
  } finally {
    await connection.end().catch(() => connection.destroy());
  }
}

async function showGrants(connection: Connection, role: string): Promise<string[] | null> {
  try {
    // A role has no host part: the quoted name alone names it.
    const [rows] = await connection.query<RowDataPacket[]>(`SHOW GRANTS FOR ${connection.escape(role)}`);
    return rows.map((row) => String(Object.values(row)[0]));
  } catch (error) {
    if ((error as { errno?: number }).errno === ER_NONEXISTING_GRANT) return null;
    throw error;
  }
}

/** Tables of every database a database-wide grant names (wildcards included), by database. */
async function tablesOf(connection: Connection, roles: readonly RoleGrants[]): Promise<Map<string, string[]>> {
  const patterns = new Set<string>();
  for (const role of roles) for (const grant of role.grants) if (grant.database !== null && grant.table === null) patterns.add(grant.database);
  const tables = new Map<string, string[]>();
  if (patterns.size === 0) return tables;
  const [schemas] = await connection.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA');
  const wanted = schemas.map((row) => String(row['name'])).filter((name) => [...patterns].some((pattern) => databaseMatches(pattern, name)));
  if (wanted.length === 0) return tables;
  const [rows] = await connection.query<RowDataPacket[]>(
    'SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME',
    [wanted],
  );
  for (const name of wanted) tables.set(name, []);
  for (const row of rows) tables.get(String(row['db']))?.push(String(row['name']));
  return tables;
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}
