/**
 * What a demo run left in MariaDB, recorded in its directory before anything is created, so
 * that `meshgate demo --clean` (or the next run in the same directory) can drop exactly
 * those objects: after `--keep`, and after a run that died half-way.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { MANAGED_USER_PREFIX } from '../credentials/index.ts';
import { mgError } from '../errors/index.ts';
import type { DemoNames } from './files.ts';
import { connectAdmin, dropObjects, ident, type AdminTarget } from './provision.ts';

export const KEPT_FILE = 'mariadb-objects.json';

export interface KeptObjects {
  readonly mariadb: { readonly host: string; readonly port: number };
  readonly names: DemoNames;
}

export async function recordKept(dir: string, kept: KeptObjects): Promise<void> {
  const text = JSON.stringify({ note: 'MariaDB objects of a meshgate demo; `meshgate demo --clean --dir <this dir>` drops them', ...kept }, null, 2);
  await writeFile(join(dir, KEPT_FILE), text + '\n');
}

export async function readKept(dir: string): Promise<KeptObjects | null> {
  let text: string;
  try {
    text = await readFile(join(dir, KEPT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<KeptObjects>;
  const names = parsed.names;
  if (parsed.mariadb === undefined || names?.database === undefined || names.roles?.writer === undefined || names.roles.reader === undefined || names.admin === undefined) {
    throw mgError('MG_CONFIG_INVALID', `${join(dir, KEPT_FILE)} is not a record the demo wrote; drop its objects by hand and delete the file`);
  }
  return { mariadb: parsed.mariadb, names };
}

export async function forgetKept(dir: string): Promise<void> {
  await rm(join(dir, KEPT_FILE), { force: true });
}

/**
 * Drops the recorded objects: the accounts meshgate made for the demo's roles (a `serve`
 * stopped by kill -9 leaves them), the admin account, the roles and the database.
 */
export async function dropKept(target: AdminTarget, kept: KeptObjects): Promise<{ leaseAccounts: number }> {
  if (kept.mariadb.host !== target.host || kept.mariadb.port !== target.port) {
    throw mgError(
      'MG_USAGE',
      `the kept demo objects are in MariaDB at ${kept.mariadb.host}:${kept.mariadb.port}, not ${target.host}:${target.port}: pass --mariadb mysql://user:password@${kept.mariadb.host}:${kept.mariadb.port}`,
    );
  }
  const { names } = kept;
  const roles = [names.roles.writer, names.roles.reader];
  const admin = await connectAdmin(target);
  try {
    const [rows] = await admin.query<RowDataPacket[]>(
      'SELECT DISTINCT User AS user, Host AS host FROM mysql.roles_mapping WHERE Role IN (?, ?) AND User LIKE ?',
      [...roles, `${MANAGED_USER_PREFIX.replace(/[\\%_]/g, (c) => '\\' + c)}%`],
    );
    for (const row of rows) await admin.query('DROP USER IF EXISTS ?@?', [row['user'], row['host']]);
    await admin.query(`DROP USER IF EXISTS ${ident(names.admin)}@'%'`);
    await dropObjects(admin, names.database, roles);
    return { leaseAccounts: rows.length };
  } finally {
    await admin.end();
  }
}
