/**
 * Memory per idle authenticated session: each proxy's resident set before and after `count`
 * connections that logged in and ran one statement, then sit idle, as a pool's spare
 * connections do. RSS is what the node (or HAProxy) is charged for; the delta per session is
 * what a thousand idle pooled connections cost a replica.
 */
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { summed, type Pids } from './cpu.ts';
import type { Path } from './peers.ts';
import { MARIADB } from './setup.ts';

export function rssKib(pids: Pids): number {
  return summed(pids, processRssKib);
}

function processRssKib(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]);
}

export async function idleSessionCost(path: Path, count: number): Promise<{ kibPerSession: number; rssBeforeKib: number; rssAfterKib: number }> {
  if (path.proxyPid === null) throw new TypeError(`${path.name} has no proxy process`);
  const pid = path.proxyPid;
  // A few sessions first, so code, TLS and pool structures paid once are not counted per session.
  const warm = await open(path, 10);
  await closeAll(warm);
  await settle();
  const before = rssKib(pid);
  const conns: mysql.Connection[] = [];
  try {
    for (let opened = 0; opened < count; opened += 50) conns.push(...(await open(path, Math.min(50, count - opened))));
    await settle();
    const after = rssKib(pid);
    return { kibPerSession: Math.round(((after - before) / count) * 10) / 10, rssBeforeKib: before, rssAfterKib: after };
  } finally {
    await closeAll(conns);
  }
}

async function open(path: Path, count: number): Promise<mysql.Connection[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const conn = await mysql.createConnection(path.options);
      await conn.query('SELECT 1');
      return conn;
    }),
  );
}

async function closeAll(conns: readonly mysql.Connection[]): Promise<void> {
  await Promise.all(conns.map((conn) => conn.end().catch(() => conn.destroy())));
}

/** Lets buffers of the burst be released (and a GC run) before RSS is read. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 2000));
}

/**
 * Raises MariaDB's max_connections to at least `wanted` (saying so on stderr, as `who`, for
 * `what`); the returned function puts it back. Each session through meshgate holds a MariaDB
 * connection, and MariaDB's default (151) is below what the session measurements open.
 */
export async function ensureMaxConnections(wanted: number, who: string, what: string): Promise<() => Promise<void>> {
  const admin = await mysql.createConnection(MARIADB);
  try {
    const [rows] = await admin.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.max_connections AS n');
    const current = Number(rows[0]!['n']);
    if (current >= wanted) return async () => undefined;
    process.stderr.write(`${who}: MariaDB max_connections ${current} → ${wanted} for ${what} (put back after)\n`);
    await admin.query(`SET GLOBAL max_connections = ${wanted}`);
    return async () => {
      const again = await mysql.createConnection(MARIADB);
      await again.query(`SET GLOBAL max_connections = ${current}`).finally(() => again.end());
    };
  } finally {
    await admin.end();
  }
}
