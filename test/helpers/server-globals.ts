/**
 * Changing a MariaDB global for a test, safely while other runs share the server.
 *
 * Other runs may want the same global changed at the same moment, so a plain save-and-restore
 * would let one run put the value back under another's feet (or leave it changed for good).
 * Holders of a global register in a table of their own under a named lock; the last one out
 * puts back the value from before the first one came and removes the table. A holder whose
 * connection is gone (a killed run) no longer counts. New sessions pick the global up.
 *
 * max_allowed_packet keeps the database and lock names it had before this was generalised,
 * so runs of older checkouts and of this one still count each other.
 */
import type { Connection } from 'mysql2/promise';
import { connectAdmin } from '../../src/demo/provision.ts';
import { MARIADB_TARGET } from './services.ts';

export interface HoldOptions {
  /**
   * `exactly` (default): the global is `value` while held; a run holding it at another value
   * is waited for. `at-least`: raised to `value` if it is lower; holders share the highest.
   */
  readonly mode?: 'exactly' | 'at-least';
  /** How long to wait for another run's different value to be let go (default 60 s). */
  readonly waitMs?: number;
}

const LEGACY_NAMES: Readonly<Record<string, { db: string; lock: string }>> = {
  max_allowed_packet: { db: 'meshgate_test_packet_holders', lock: 'meshgate_test_max_allowed_packet' },
};

/** Holds `variable` at `value` (see HoldOptions) and returns the function that lets go of it. */
export async function holdGlobal(variable: string, value: number | string, options: HoldOptions = {}): Promise<() => Promise<void>> {
  if (!/^[a-z_]{1,40}$/.test(variable)) throw new TypeError(`holdGlobal: '${variable}' is not a global variable name`);
  const mode = options.mode ?? 'exactly';
  if (mode === 'at-least' && typeof value !== 'number') throw new TypeError('holdGlobal: at-least needs a number');
  const { db, lock } = LEGACY_NAMES[variable] ?? { db: `meshgate_test_${variable}_holders`, lock: `meshgate_test_${variable}` };
  const admin = await connectAdmin(MARIADB_TARGET);
  const [[{ id }]] = (await admin.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
  const locked = async <T>(work: () => Promise<T>): Promise<T> => {
    await admin.query('SELECT GET_LOCK(?, 30)', [lock]);
    try {
      return await work();
    } finally {
      await admin.query('SELECT RELEASE_LOCK(?)', [lock]);
    }
  };
  // A string column takes numbers too, so an older run's BIGINT table and this one's agree.
  const asStored = (raw: unknown) => (typeof value === 'number' ? Number(raw) : String(raw ?? ''));
  let original: number | string = value;
  try {
    const deadline = Date.now() + (options.waitMs ?? 60_000);
    for (;;) {
      const joined = await locked(async () => {
        await admin.query(`CREATE DATABASE IF NOT EXISTS ${db}`);
        await admin.query(`CREATE TABLE IF NOT EXISTS ${db}.holders (connection BIGINT PRIMARY KEY, original TEXT NOT NULL)`);
        await admin.query(`DELETE FROM ${db}.holders WHERE connection NOT IN (SELECT ID FROM information_schema.PROCESSLIST)`);
        const [held] = (await admin.query(`SELECT original FROM ${db}.holders LIMIT 1`)) as unknown as [{ original: unknown }[]];
        const current = asStored(await globalValue(admin, variable));
        if (mode === 'exactly' && held.length > 0 && current !== value) return false;
        original = held.length > 0 ? asStored(held[0]!.original) : current;
        await admin.query(`INSERT INTO ${db}.holders VALUES (?, ?)`, [id, original]);
        const change = mode === 'exactly' ? current !== value : (current as number) < (value as number);
        if (change) await admin.query(`SET GLOBAL ${variable} = ?`, [value]);
        return true;
      });
      if (joined) break;
      if (Date.now() > deadline) throw new Error(`holdGlobal: another run holds ${variable} at another value; retry when it is done`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    await admin.end();
    throw error;
  }
  return async () => {
    try {
      await locked(async () => {
        await admin.query(`DELETE FROM ${db}.holders WHERE connection = ? OR connection NOT IN (SELECT ID FROM information_schema.PROCESSLIST)`, [id]);
        const [rest] = (await admin.query(`SELECT COUNT(*) AS n FROM ${db}.holders`)) as unknown as [{ n: number }[]];
        if (Number(rest[0]!.n) > 0) return;
        await admin.query(`SET GLOBAL ${variable} = ?`, [original]);
        await admin.query(`DROP DATABASE IF EXISTS ${db}`);
      });
    } finally {
      await admin.end();
    }
  };
}

async function globalValue(admin: Connection, variable: string): Promise<unknown> {
  const [[row]] = (await admin.query(`SELECT @@GLOBAL.${variable} AS v`)) as unknown as [[{ v: unknown }]];
  return row.v;
}

/**
 * Raises MariaDB's global max_allowed_packet for tests that move >16 MiB messages and
 * returns the function that lets go of it.
 */
export function withMaxAllowedPacket(bytes: number): Promise<() => Promise<void>> {
  return holdGlobal('max_allowed_packet', bytes, { mode: 'at-least' });
}
