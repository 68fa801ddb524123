/**
 * What meshgate reads of MariaDB's own settings to stay invisible to clients:
 *
 * - The query cache. Its key is a statement's exact text, so a trace id that differs per
 *   statement would make every SELECT a miss: statements the cache could answer carry
 *   meshgate's tag without one (identity and role are the same for every statement of a
 *   session, so a repeated query hits as it would direct; its trace id is in the audit event,
 *   beside MariaDB's connection id). The cache's state is the global query_cache_type and
 *   query_cache_size, read at start and every REFRESH_MS, so turning it on needs no restart.
 * - Which character set each collation id belongs to, read once: COM_CHANGE_USER may name
 *   another collation of the session's character set (change-user.ts).
 */
import mysql from 'mysql2/promise';
import type { Logger } from '../../log.ts';
import type { UpstreamTarget } from './upstream.ts';

export type QueryCacheMode = 'off' | 'on' | 'demand';

const REFRESH_MS = 60_000;

export function answerableByQueryCache(mode: QueryCacheMode, verb: string | null, sql: string): boolean {
  if (mode === 'off' || (verb !== 'SELECT' && verb !== 'WITH')) return false;
  if (mode === 'demand') return /\bSQL_CACHE\b/i.test(sql);
  return !/\bSQL_NO_CACHE\b/i.test(sql);
}

export interface ServerSettings {
  readonly queryCacheMode: QueryCacheMode;
  /** The character set of a collation id; null when MariaDB does not know it (or could not be asked). */
  charsetOf(collation: number): string | null;
  stop(): void;
}

/** Any account that logs in will do: every account may read these. */
export type AccountForRead = () => { readonly user: string; readonly password: string } | null;

export async function watchServerSettings(target: UpstreamTarget, account: AccountForRead, log: Logger): Promise<ServerSettings> {
  let mode: QueryCacheMode = 'off';
  let charsets = new Map<number, string>();
  const read = async (what: (conn: mysql.Connection) => Promise<void>) => {
    const credentials = account();
    if (credentials === null) return;
    try {
      const conn = await mysql.createConnection({
        host: target.host,
        port: target.port,
        user: credentials.user,
        password: credentials.password,
        connectTimeout: target.connectTimeoutMs,
        ...target.tls?.mysql2(target.host, target.port),
      });
      try {
        await what(conn);
      } finally {
        await conn.end().catch(() => conn.destroy());
      }
    } catch (error) {
      // At worst the query cache misses and COM_CHANGE_USER keeps to the login's collation.
      log.warn('cannot read MariaDB settings (query cache, collations); statement tags keep their trace ids', { error: (error as Error).message });
    }
  };
  const refreshQueryCache = (conn: mysql.Connection) =>
    conn.query('SELECT @@global.query_cache_type AS type, @@global.query_cache_size AS size').then(([rows]) => {
      const row = (rows as Array<{ type: string; size: number | string }>)[0];
      const type = String(row?.type).toUpperCase();
      mode = row === undefined || Number(row.size) === 0 ? 'off' : type === 'ON' ? 'on' : type === 'DEMAND' ? 'demand' : 'off';
    });
  await read(async (conn) => {
    await refreshQueryCache(conn);
    const [rows] = await conn.query('SELECT ID AS id, CHARACTER_SET_NAME AS charset FROM information_schema.COLLATIONS');
    charsets = new Map((rows as Array<{ id: number; charset: string }>).map((row) => [Number(row.id), row.charset]));
  });
  const timer = setInterval(() => void read(refreshQueryCache), REFRESH_MS);
  timer.unref();
  return {
    get queryCacheMode() {
      return mode;
    },
    charsetOf: (collation) => charsets.get(collation) ?? null,
    stop: () => clearInterval(timer),
  };
}
