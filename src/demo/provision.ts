/**
 * Creates what a meshgate deployment expects to find in MariaDB — a database, MariaDB
 * roles with grants, and one login account per role that holds only that role — and
 * removes it again. Used by `meshgate demo` and the integration tests; in production the
 * operator (or the credentials issue's lease manager) owns these objects.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { mgError } from '../errors/index.ts';
import { classifyLoginFailure } from '../engines/mysql/login-failure.ts';

export interface AdminTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export interface RoleSpec {
  /** MariaDB privileges on the database, e.g. ['SELECT'] or ['SELECT', 'INSERT']. */
  readonly privileges: readonly string[];
}

export interface ProvisionedAccount {
  readonly role: string;
  readonly user: string;
  readonly password: string;
}

export interface Provisioned {
  readonly database: string;
  readonly accounts: ReadonlyMap<string, ProvisionedAccount>;
  /** Drops the accounts, roles and database. */
  drop(): Promise<void>;
}

const IDENT = /^[A-Za-z0-9_]{1,64}$/;

export function ident(name: string): string {
  if (!IDENT.test(name)) throw new TypeError(`not a safe MariaDB identifier: ${name}`);
  return '`' + name + '`';
}

export async function connectAdmin(target: AdminTarget): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection({ ...target, multipleStatements: false, connectTimeout: 5000 });
  } catch (error) {
    throw adminLoginError(target, error);
  }
}

/**
 * Install advice only where nothing answers: a refused password on a running MariaDB needs
 * another URL, not another MariaDB.
 */
function adminLoginError(target: AdminTarget, error: unknown): Error {
  const failure = classifyLoginFailure(error);
  const where = `MariaDB at ${target.host}:${target.port}`;
  const login = `the login as '${target.user}'`;
  const url = '--mariadb mysql://user:password@host:port (or MESHGATE_DEMO_MARIADB)';
  switch (failure.kind) {
    case 'password-refused':
      return mgError('MG_UPSTREAM_AUTH_FAILED', `${where} refused ${login} (${failure.detail}): check the user and password in ${url}`, error);
    case 'host-not-allowed':
      return mgError('MG_UPSTREAM_AUTH_FAILED', `${where} refused ${login} from this host (${failure.detail}): use an account that may connect from here, in ${url}`, error);
    case 'socket-auth-only':
      return mgError(
        'MG_UPSTREAM_AUTH_FAILED',
        `${where} lets '${target.user}' log in only through the unix socket (${failure.detail}); the demo logs in over TCP: ` +
          `give it an account with a password in ${url}, e.g. CREATE USER 'meshgate_demo_root'@'127.0.0.1' IDENTIFIED BY '…'; GRANT ALL ON *.* TO it WITH GRANT OPTION`,
        error,
      );
    case 'nothing-listening':
      return mgError(
        'MG_UPSTREAM_UNAVAILABLE',
        `nothing listens on ${target.host}:${target.port} (${failure.detail}). ` +
          'Install and start MariaDB: `sudo apt-get install -y mariadb-server && sudo service mariadb start` ' +
          `(root logs in from 127.0.0.1 with an empty password there), or point the demo at one: ${url}`,
        error,
      );
    case 'unknown-host':
      return mgError('MG_UPSTREAM_UNAVAILABLE', `cannot resolve ${target.host} (${failure.detail}): fix the host in ${url}`, error);
    case 'no-answer':
    case 'busy':
      return mgError('MG_UPSTREAM_UNAVAILABLE', `${where} did not take ${login} (${failure.detail}): check that it is running and reachable from here, then run the demo again`, error);
    case 'tls':
    case 'other':
      return mgError('MG_UPSTREAM_UNAVAILABLE', `${where} failed ${login} (${failure.detail}); its error log may say more`, error);
  }
}

export async function provision(
  target: AdminTarget,
  database: string,
  roles: Readonly<Record<string, RoleSpec>>,
  setupSql: readonly string[] = [],
  options: { readonly staticAccounts?: boolean } = {},
): Promise<Provisioned> {
  const admin = await connectAdmin(target);
  const accounts = new Map<string, ProvisionedAccount>();
  try {
    await dropObjects(admin, database, Object.keys(roles));
    await admin.query(`CREATE DATABASE ${ident(database)}`);
    for (const statement of setupSql) await admin.query(statement.replaceAll("{db}", ident(database)));
    for (const [role, spec] of Object.entries(roles)) {
      const user = accountName(role);
      const password = randomBytes(18).toString('base64url');
      await admin.query(`CREATE ROLE ${ident(role)}`);
      await admin.query(`GRANT ${spec.privileges.join(', ')} ON ${ident(database)}.* TO ${ident(role)}`);
      if (options.staticAccounts === false) continue;
      await admin.query(`CREATE USER ${ident(user)}@'%' IDENTIFIED BY ?`, [password]);
      await admin.query(`GRANT ${ident(role)} TO ${ident(user)}@'%'`);
      await admin.query(`SET DEFAULT ROLE ${ident(role)} FOR ${ident(user)}@'%'`);
      accounts.set(role, { role, user, password });
    }
  } finally {
    await admin.end();
  }
  return {
    database,
    accounts,
    async drop() {
      const again = await connectAdmin(target);
      try {
        await dropObjects(again, database, Object.keys(roles));
      } finally {
        await again.end();
      }
    },
  };
}

/**
 * meshgate's admin account for dynamic credentials, with only what it needs: create and
 * drop users, read mysql.user, see and kill their connections, grant these roles.
 */
export async function provisionLeaseAdmin(target: AdminTarget, user: string, roles: readonly string[]): Promise<{ password: string; drop(): Promise<void> }> {
  const admin = await connectAdmin(target);
  const password = randomBytes(18).toString('base64url');
  try {
    await admin.query(`DROP USER IF EXISTS ${ident(user)}@'%'`);
    await admin.query(`CREATE USER ${ident(user)}@'%' IDENTIFIED BY ?`, [password]);
    await admin.query(`GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO ${ident(user)}@'%'`);
    await admin.query(`GRANT SELECT ON mysql.user TO ${ident(user)}@'%'`);
    for (const role of roles) await admin.query(`GRANT ${ident(role)} TO ${ident(user)}@'%' WITH ADMIN OPTION`);
  } finally {
    await admin.end();
  }
  return {
    password,
    async drop() {
      const again = await connectAdmin(target);
      try {
        await again.query(`DROP USER IF EXISTS ${ident(user)}@'%'`);
      } finally {
        await again.end();
      }
    },
  };
}

/** The login account that holds exactly one role. */
export function accountName(role: string): string {
  return `mg_${role}`.slice(0, 64);
}

export async function dropObjects(admin: mysql.Connection, database: string, roles: readonly string[]): Promise<void> {
  for (const role of roles) {
    await admin.query(`DROP USER IF EXISTS ${ident(accountName(role))}@'%'`);
    await admin.query(`DROP ROLE IF EXISTS ${ident(role)}`);
  }
  await admin.query(`DROP DATABASE IF EXISTS ${ident(database)}`);
}
