/**
 * A private, throwaway MariaDB server for benchmarks and tests that need something the system
 * server does not offer (TLS, performance_schema), or a setting no shared server should get:
 * its own datadir under a temporary directory, its own socket and a
 * free port on 127.0.0.1, started with --no-defaults so nothing from /etc/mysql applies
 * except the few settings copied below to keep logins comparable with the system server.
 *
 * stop() shuts it down (SIGTERM, then SIGKILL after a grace period) and deletes its directory;
 * a process exit or SIGINT/SIGTERM while it runs does the same, as far as a synchronous exit
 * hook can. Starting one takes a few seconds (mariadb-install-db, then the server).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

const INSTALL_DB = 'mariadb-install-db';
const MARIADBD = '/usr/sbin/mariadbd';
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 20_000;

export interface PrivateMariadbOptions {
  /** PEM files for the server side of TLS; `ca` also verifies client certificates. Absent: no TLS. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
  /** Start with performance_schema on (MariaDB's default is off). */
  readonly performanceSchema?: boolean;
}

/** Why a private server cannot be started here (its programs are missing), or null. */
export function privateMariadbMissing(): string | null {
  if (!existsSync(MARIADBD)) return `needs ${MARIADBD} (apt-get install mariadb-server)`;
  if (!['/usr/bin', '/usr/local/bin', '/usr/sbin'].some((dir) => existsSync(`${dir}/${INSTALL_DB}`))) return `needs ${INSTALL_DB} (apt-get install mariadb-server)`;
  return null;
}

export interface PrivateMariadb {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly socketPath: string;
  /** Runs statements as root over the Unix socket (root logs in without a password). */
  admin<T = unknown>(sql: string, values?: unknown[]): Promise<T>;
  /** Server variables that matter to the comparison (SSL library, TLS versions, ...). */
  describe(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** Settings of the system MariaDB (/etc/mysql) that bear on logins, copied over. */
const LIKE_SYSTEM_SERVER = ['--skip-name-resolve', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci', '--skip-log-bin'];
/** Kept small: this server only ever sees logins. */
const SMALL = ['--innodb-buffer-pool-size=32M', '--innodb-log-file-size=8M'];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port for the private MariaDB');
  return address.port;
}

/** The [ERROR] lines of a server log if there are any, else its last lines. */
function tail(text: string, lines = 12): string {
  const all = text.trim().split('\n');
  const errors = all.filter((line) => line.includes('[ERROR]'));
  return (errors.length > 0 ? errors : all).slice(-lines).join('\n');
}

export async function startPrivateMariadb(options: PrivateMariadbOptions): Promise<PrivateMariadb> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-mariadb-'));
  const datadir = join(dir, 'data');
  const socketPath = join(dir, 'mariadb.sock');
  const asUser = process.getuid?.() === 0 ? ['--user=root'] : [];
  let proc: ChildProcess | null = null;
  let stderr = '';
  let exited: Promise<void> = Promise.resolve();

  // Last resort if the benchmark dies with the server running: synchronous, so it also works
  // from the 'exit' event.
  const emergency = () => {
    if (proc !== null && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    emergency();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', emergency);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc?.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
      process.off('exit', emergency);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  };

  try {
    try {
      await promisify(execFile)(
        INSTALL_DB,
        ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asUser, ...LIKE_SYSTEM_SERVER, ...SMALL],
        { timeout: 120_000 },
      );
    } catch (error) {
      const e = error as { message: string; stderr?: string; stdout?: string };
      throw new Error(`${INSTALL_DB} failed: ${tail(`${e.stdout ?? ''}\n${e.stderr ?? ''}`) || e.message}`);
    }

    const port = await freePort();
    const child = spawn(
      MARIADBD,
      [
        '--no-defaults',
        ...asUser,
        `--datadir=${datadir}`,
        `--socket=${socketPath}`,
        `--pid-file=${join(dir, 'mariadbd.pid')}`,
        `--tmpdir=${dir}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        ...(options.tls === undefined ? [] : [`--ssl-cert=${options.tls.cert}`, `--ssl-key=${options.tls.key}`, `--ssl-ca=${options.tls.ca}`]),
        ...(options.performanceSchema === true ? ['--performance-schema=ON'] : []),
        ...LIKE_SYSTEM_SERVER,
        ...SMALL,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc = child;
    exited = once(child);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-16_384);
    });

    // Ready when root gets in over the socket and the TCP port answers.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`mariadbd exited (${child.exitCode ?? child.signalCode}) before accepting connections: ${tail(stderr)}`);
      }
      try {
        const probe = await mysql.createConnection({ socketPath, user: 'root', password: '' });
        await probe.query('SELECT 1');
        await probe.end();
        const tcp = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
        await tcp.end();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`mariadbd did not accept connections within ${READY_TIMEOUT_MS} ms: ${(error as Error).message}; ${tail(stderr)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    const admin = async <T>(sql: string, values?: unknown[]): Promise<T> => {
      const conn = await mysql.createConnection({ socketPath, user: 'root', password: '' });
      try {
        const [rows] = await conn.query(sql, values);
        return rows as T;
      } finally {
        await conn.end();
      }
    };
    const [ssl] = await admin<Array<{ Value: string }>>("SHOW GLOBAL VARIABLES LIKE 'have_ssl'");
    if (options.tls !== undefined && ssl?.Value !== 'YES') throw new Error(`mariadbd started without TLS (have_ssl = ${ssl?.Value ?? 'unknown'}): ${tail(stderr)}`);
    return {
      host: '127.0.0.1',
      port,
      socketPath,
      admin,
      async describe() {
        const rows = await admin<Array<{ Variable_name: string; Value: string }>>(
          "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'have_ssl', 'version_ssl_library', 'tls_version', 'skip_name_resolve', 'thread_handling')",
        );
        return Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function once(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
