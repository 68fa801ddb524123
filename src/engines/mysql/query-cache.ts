/**
 * Whether MariaDB's query cache could answer a statement. Its key is the statement's exact
 * text, so a trace id that differs per statement would make every SELECT a miss: statements
 * the cache could answer carry meshgate's tag without one (identity and role are the same for
 * every statement of a session, so a repeated query hits as it would direct). Their trace id
 * is in the audit event, beside MariaDB's connection id.
 *
 * The cache's state is MariaDB's global query_cache_type and query_cache_size, read when the
 * engine starts and again every REFRESH_MS, so turning the cache on needs no restart.
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

export interface QueryCacheWatch {
  readonly mode: QueryCacheMode;
  stop(): void;
}

/** Any account that logs in will do: every account may read global variables. */
export type AccountForRead = () => { readonly user: string; readonly password: string } | null;

export async function watchQueryCache(target: UpstreamTarget, account: AccountForRead, log: Logger): Promise<QueryCacheWatch> {
  let mode: QueryCacheMode = 'off';
  const refresh = async () => {
    const credentials = account();
    if (credentials === null) return;
    try {
      mode = await readQueryCacheMode(target, credentials.user, credentials.password);
    } catch (error) {
      // The tag then keeps its trace ids: at worst the cache misses, nothing breaks.
      log.warn('cannot read MariaDB query cache settings; statement tags keep their trace ids', { error: (error as Error).message });
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh(), REFRESH_MS);
  timer.unref();
  return {
    get mode() {
      return mode;
    },
    stop: () => clearInterval(timer),
  };
}

async function readQueryCacheMode(target: UpstreamTarget, user: string, password: string): Promise<QueryCacheMode> {
  const conn = await mysql.createConnection({ host: target.host, port: target.port, user, password, connectTimeout: target.connectTimeoutMs });
  try {
    const [rows] = await conn.query('SELECT @@global.query_cache_type AS type, @@global.query_cache_size AS size');
    const row = (rows as Array<{ type: string; size: number | string }>)[0];
    if (row === undefined || Number(row.size) === 0) return 'off';
    const type = String(row.type).toUpperCase();
    return type === 'ON' ? 'on' : type === 'DEMAND' ? 'demand' : 'off';
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
