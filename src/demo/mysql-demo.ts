/**
 * The demo's MariaDB part: mysql2 and the `mariadb` CLI through meshgate, each workload with
 * its SVID, plus the callers meshgate must turn away (no certificate, no TLS).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

export interface Outcome {
  readonly who: string;
  readonly what: string;
  readonly allowed: boolean;
  readonly detail: string;
}

type Certs = Readonly<Record<string, { cert: Buffer; key: Buffer; ca: Buffer }>>;

/** Which outcomes the demo's policy must produce, in order. */
export const EXPECTED_MYSQL = [true, true, true, false, false, false, false];

export async function runMysqlDemo(options: { readonly port: number; readonly database: string; readonly certs: Certs; readonly certDir: string }): Promise<Outcome[]> {
  const { port, database, certs } = options;
  const outcomes: Outcome[] = [];
  const connect = (ssl?: mysql.ConnectionOptions['ssl']) => mysql.createConnection({ host: '127.0.0.1', port, user: 'demo', database, ssl });
  const attempt = async (who: string, what: string, ssl: mysql.ConnectionOptions['ssl'] | undefined, sql: string | null) => {
    let conn: mysql.Connection | undefined;
    try {
      conn = await connect(ssl);
      if (sql === null) {
        outcomes.push({ who, what, allowed: true, detail: 'connected' });
        return;
      }
      const [result] = await conn.query(sql);
      const detail = Array.isArray(result) ? `${result.length} row(s)` : `${(result as mysql.ResultSetHeader).affectedRows} row(s) affected`;
      outcomes.push({ who, what, allowed: true, detail });
    } catch (error) {
      const e = error as { errno?: number; message: string };
      outcomes.push({ who, what, allowed: false, detail: e.message.startsWith('[MG_') ? e.message : `MariaDB ${e.errno}: ${e.message}` });
    } finally {
      await conn?.end().catch(() => {});
    }
  };
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await attempt('orders', "INSERT INTO orders VALUES (…'croissant', 12)", certs.orders, "INSERT INTO orders (item, qty) VALUES ('croissant', 12)");
  await attempt('orders', `SELECT * FROM orders /*traceparent=…*/`, certs.orders, `SELECT * FROM orders /*traceparent='${traceparent}'*/`);
  await attempt('analytics', 'SELECT item, qty FROM orders', certs.analytics, 'SELECT item, qty FROM orders');
  await attempt('analytics', "INSERT INTO orders VALUES (…'free', 99)", certs.analytics, "INSERT INTO orders (item, qty) VALUES ('free', 99)");
  await attempt('staging', 'connect', certs.staging, null);
  await attempt('no cert', 'connect over TLS without a client certificate', { ca: certs.orders!.ca }, null);
  await attempt('plaintext', 'connect without TLS', undefined, null);
  outcomes.push(await viaMariadbCli(port, options.certDir, 'orders', database));
  return outcomes;
}

/** The mariadb command-line client, if installed, through meshgate with its SVID files. */
async function viaMariadbCli(port: number, certDir: string, workload: string, database: string): Promise<Outcome> {
  const what = 'mariadb CLI: SELECT CURRENT_USER(), CURRENT_ROLE()';
  const args = ['-h', '127.0.0.1', '-P', String(port), '-u', 'demo', '--ssl', '--ssl-ca', join(certDir, 'bundle.pem'), '--ssl-cert', join(certDir, `${workload}.crt`), '--ssl-key', join(certDir, `${workload}.key`), '--batch', '--skip-column-names', '-e', 'SELECT CURRENT_USER(), CURRENT_ROLE()', database];
  try {
    const { stdout } = await promisify(execFile)('mariadb', args, { timeout: 10_000 });
    return { who: workload, what, allowed: true, detail: stdout.trim().replace(/\t/g, ' as ') };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { who: workload, what, allowed: false, detail: 'skipped: the mariadb client is not installed (apt-get install mariadb-client)' };
    return { who: workload, what, allowed: false, detail: (e.stderr ?? e.message).trim() };
  }
}
