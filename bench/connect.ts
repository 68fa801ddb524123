/**
 * `npm run bench:connect` (tsx bench/connect.ts): what it costs to set up a connection.
 * Each connect opens a connection, runs `SELECT 1` and closes it cleanly with end(), so
 * through meshgate the upstream connection goes back to the pool. Timed: from the start of
 * the connect to the result of `SELECT 1` (the cycle with end() is reported beside it).
 *
 *   a_direct_mariadb            mysql2 straight to MariaDB (plaintext: the local MariaDB has no TLS)
 *   b_meshgate_static_unpooled  meshgate, mTLS with an SVID, static account, upstream.pool.maxIdlePerKey: 0
 *   c_meshgate_dynamic_pooled   meshgate, mTLS with an SVID, dynamic lease account, pooled upstream
 *   d_meshgate_upstream_acquire inside meshgate during (c): only the upstream acquisition
 *                               (lease lookup + pooled take, or a login), beside the upstream
 *                               login time measured the same way during (b)
 *   e0_private_mariadb_plaintext  control for (e)/(f): the private server below, plaintext, as (a)
 *   e_direct_mariadb_tls        mysql2 straight to a private MariaDB over TLS, verifying the server
 *                               certificate (ssl: { ca }), no client certificate
 *   f_direct_mariadb_mtls       the same with a client certificate (the SVID of (b)/(c)) and
 *                               REQUIRE X509 on the account: what meshgate's client side demands
 *   c_full_, e_full_, f_full_   (c), (e), (f) with every connect a full TLS handshake: mysql2
 *                               resumes TLS sessions by default, and both meshgate and MariaDB
 *                               accept, so the plain (b)/(c)/(e)/(f) are mostly resumptions
 *   ratios                      (c)/(e), (c)/(f), (c)/(a), (c)/(b); full_*: the same for the full-handshake runs
 *
 * The system MariaDB has no TLS and is not reconfigured: (e0), (e) and (f) run against a private
 * mariadbd (test/helpers/private-mariadb.ts) with its own datadir, port and the listener certificate
 * meshgate presents, deleted at the end. If it cannot start, a JSON line says why and the other
 * scenarios still run. TLS scenarios report the negotiated protocol and how many connects
 * resumed a TLS session (mysql2 caches sessions per ssl object; servers may or may not resume).
 *
 * meshgate runs as its own process, as in bench/mysql.ts (this file, started with --child).
 * One JSON line per scenario on stdout. Options (env): MESHGATE_BENCH_CONNECTS (default 500).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { TLSSocket } from 'node:tls';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import { loadConfigFile } from '../src/config/load.ts';
import { openMariadbAccounts } from '../src/credentials/mariadb-accounts.ts';
import { connectAdmin, provision, provisionLeaseAdmin } from '../src/demo/provision.ts';
import type { MysqlEngineContext } from '../src/engines/mysql/context.ts';
import { jsonLogger } from '../src/log.ts';
import { startMeshgate } from '../src/server.ts';
import { startPrivateMariadb, type PrivateMariadb } from '../test/helpers/private-mariadb.ts';
import { benchCertificates, TRUST_DOMAIN, writeBenchPolicy } from './setup.ts';

const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
const CONNECTS = Number(process.env.MESHGATE_BENCH_CONNECTS ?? 500);
const WARMUP = 20;
// Unique per run: tests, the demo or another benchmark may share this MariaDB.
const RUN = randomBytes(3).toString('hex');
const NAMESPACE = `benchconnect${RUN}`;
const DATABASE = `mgbench_connect_${RUN}`;
const ROLE = `benchc_${RUN}_reader`;
const ADMIN_USER = `mgbench_connect_${RUN}_admin`;

interface Figures {
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly mean_ms: number;
}

function figures(samples: readonly number[]): Figures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const mean = sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length);
  return { p50_ms: round(at(0.5)), p99_ms: round(at(0.99)), mean_ms: round(mean) };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// ── child: meshgate, instrumented ───────────────────────────────────────────────────────

interface AcquireSample {
  readonly ms: number;
  readonly pooled: boolean;
}

async function child(configFile: string): Promise<void> {
  type OpenUpstream = MysqlEngineContext['openUpstream'];
  const full = jsonLogger();
  const log = { info() {}, warn: full.warn, error: full.error };
  const meshgate = await startMeshgate(loadConfigFile(configFile), log);
  const running = meshgate.engines.mysql!;

  // The listener's context is private; the benchmark times what sessions call through it.
  const ctx = (running.listener as unknown as { ctx: { openUpstream: OpenUpstream } }).ctx;
  const open = ctx.openUpstream;
  let acquire: AcquireSample[] = [];
  let takes: number[] = [];
  ctx.openUpstream = async (identity, role, login, sessionId) => {
    const reused = running.pool.stats.reused;
    const started = performance.now();
    const use = await open(identity, role, login, sessionId);
    acquire.push({ ms: performance.now() - started, pooled: running.pool.stats.reused > reused });
    return use;
  };
  const take = running.pool.take.bind(running.pool);
  running.pool.take = async (login) => {
    const started = performance.now();
    const connection = await take(login);
    takes.push(performance.now() - started);
    return connection;
  };

  process.stdout.write(`ready ${running.address.port}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'reset') {
      acquire = [];
      takes = [];
      process.stdout.write('ok\n');
    } else if (line === 'stats') {
      const pooled = acquire.filter((s) => s.pooled).map((s) => s.ms);
      const fresh = acquire.filter((s) => !s.pooled).map((s) => s.ms);
      process.stdout.write(
        `stats ${JSON.stringify({
          acquire: { count: acquire.length, ...figures(acquire.map((s) => s.ms)) },
          pooled: { count: pooled.length, ...figures(pooled) },
          fresh: { count: fresh.length, ...figures(fresh) },
          take: { count: takes.length, ...figures(takes) },
          pool: { ...running.pool.stats, idle: running.pool.idleCount },
        })}\n`,
      );
    }
  }
  await meshgate.close();
  process.exit(0);
}

// ── parent: setup, measurement, cleanup ─────────────────────────────────────────────────

interface MeshgateChild {
  readonly process: ChildProcess;
  readonly port: number;
  ask(command: string): Promise<string>;
}

async function startChild(configFile: string): Promise<MeshgateChild> {
  const proc = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', configFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Interface = createInterface({ input: proc.stdout! });
  const iterator = lines[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await iterator.next();
    if (done) throw new Error(`meshgate (${configFile}) exited`);
    return value as string;
  };
  const ready = /^ready (\d+)$/.exec(await next());
  if (!ready) throw new Error(`meshgate (${configFile}) did not start`);
  return {
    process: proc,
    port: Number(ready[1]),
    async ask(command) {
      proc.stdin!.write(`${command}\n`);
      return next();
    },
  };
}

async function stopChild(child: MeshgateChild): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = once(child.process, 'exit');
  child.process.stdin!.end(); // ends the command loop: meshgate closes and drops its session leases
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

interface Measured extends Figures {
  readonly cycle_mean_ms: number;
  /** TLS connects only: protocol(s) negotiated and how many measured connects resumed a session. */
  readonly tls_protocol?: string;
  readonly tls_resumed?: number;
}

/**
 * mysql2 keeps one TLS session per ssl object and host:port, and resumes it on the next
 * connect. Dropping it after each connect (outside the timed part) makes every connect a full
 * handshake, as with drivers that do not resume. Relies on mysql2's internal session cache
 * module (lib/tls_session_cache.js, not exported): tls_resumed in the output shows it worked.
 */
type TlsSessionSlotClass = new (
  ssl: object,
  host: string | undefined,
  port: number | undefined,
  rejectUnauthorized: unknown,
  verifyIdentity: unknown,
) => { delete(): void };
let tlsSessionSlot: TlsSessionSlotClass | undefined;

function forgetTlsSession(options: mysql.ConnectionOptions): void {
  const ssl = options.ssl;
  if (typeof ssl !== 'object' || ssl === null) return;
  if (tlsSessionSlot === undefined) {
    const require = createRequire(import.meta.url);
    try {
      tlsSessionSlot = require(join(dirname(require.resolve('mysql2')), 'lib', 'tls_session_cache.js')) as TlsSessionSlotClass;
    } catch (error) {
      throw new Error(`cannot force full TLS handshakes: mysql2's lib/tls_session_cache.js did not load (${(error as Error).message})`);
    }
  }
  // Keyed as mysql2 keys it (its config sets rejectUnauthorized on the ssl object itself).
  new tlsSessionSlot(ssl, options.host, options.port, ssl.rejectUnauthorized, (ssl as { verifyIdentity?: boolean }).verifyIdentity).delete();
}

interface MeasureOptions {
  readonly afterWarmup?: () => Promise<void>;
  /** Forget the TLS session after every connect: full handshakes only. */
  readonly fullHandshakes?: boolean;
}

/** `count` measured connects after a warm-up; the time to the first result, and the whole cycle. */
async function measure(options: mysql.ConnectionOptions, count: number, { afterWarmup, fullHandshakes = false }: MeasureOptions = {}): Promise<Measured> {
  const samples: number[] = [];
  let cycles = 0;
  const protocols = new Set<string>();
  let tlsConnects = 0;
  let resumed = 0;
  for (let i = 0; i < WARMUP + count; i++) {
    if (i === WARMUP) await afterWarmup?.();
    const started = performance.now();
    const conn = await mysql.createConnection(options);
    await conn.query('SELECT 1');
    const firstResult = performance.now() - started;
    // Outside the timed part, before end(): mysql2 swaps its stream for the TLSSocket on upgrade.
    const stream = (conn as unknown as { connection: { stream: unknown } }).connection.stream;
    const tls = i >= WARMUP && stream instanceof TLSSocket ? stream : null;
    if (tls !== null) {
      tlsConnects++;
      protocols.add(tls.getProtocol() ?? 'unknown');
      if (tls.isSessionReused()) resumed++;
    }
    const endStarted = performance.now();
    await conn.end();
    if (i >= WARMUP) {
      samples.push(firstResult);
      cycles += firstResult + (performance.now() - endStarted);
    }
    if (fullHandshakes) forgetTlsSession(options);
  }
  const tlsFacts = tlsConnects > 0 ? { tls_protocol: [...protocols].join(','), tls_resumed: resumed } : {};
  return { ...figures(samples), cycle_mean_ms: round(cycles / count), ...tlsFacts };
}

interface PrivateFigures {
  readonly e: Measured | null;
  readonly f: Measured | null;
  readonly eFull: Measured | null;
  readonly fFull: Measured | null;
}

/**
 * (e0), (e) and (f) against a private MariaDB with TLS, started here and always stopped and
 * deleted before returning. Failures are reported as JSON lines, not thrown.
 */
async function privateScenarios(tls: { cert: string; key: string; ca: string }, clientSsl: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<PrivateFigures> {
  const skipped = (scenario: string, reason: string) => console.log(JSON.stringify({ scenario, skipped: true, reason }));
  let server: PrivateMariadb;
  try {
    server = await startPrivateMariadb({ tls });
  } catch (error) {
    const reason = `private MariaDB with TLS could not be started: ${(error as Error).message}`;
    for (const scenario of ['e0_private_mariadb_plaintext', 'e_direct_mariadb_tls', 'f_direct_mariadb_mtls']) skipped(scenario, reason);
    return { e: null, f: null, eFull: null, fFull: null };
  }
  try {
    const password = randomBytes(18).toString('base64url');
    // As (a)'s account: a role holding SELECT on the database, granted and set as default.
    await server.admin(`CREATE DATABASE ${DATABASE}`);
    await server.admin(`CREATE ROLE ${ROLE}`);
    await server.admin(`GRANT SELECT ON ${DATABASE}.* TO ${ROLE}`);
    const users = { plain: 'bench_plain', tls: 'bench_tls', x509: 'bench_x509' } as const;
    const requires = { plain: 'NONE', tls: 'SSL', x509: 'X509' } as const;
    for (const kind of ['plain', 'tls', 'x509'] as const) {
      const user = users[kind];
      await server.admin(`CREATE USER '${user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(?) REQUIRE ${requires[kind]}`, [password]);
      await server.admin(`GRANT ${ROLE} TO '${user}'@'%'`);
      await server.admin(`SET DEFAULT ROLE ${ROLE} FOR '${user}'@'%'`);
    }
    const variables = await server.describe();
    const base = { host: server.host, port: server.port, password, database: DATABASE };
    const run = async (scenario: string, options: mysql.ConnectionOptions, extra: Record<string, unknown>, fullHandshakes = false): Promise<Measured | null> => {
      try {
        const result = await measure(options, CONNECTS, { fullHandshakes });
        console.log(JSON.stringify({ scenario, connects: CONNECTS, ...result, ...extra }));
        return result;
      } catch (error) {
        skipped(scenario, `failed: ${(error as Error).message}`);
        return null;
      }
    };
    await run('e0_private_mariadb_plaintext', { ...base, user: users.plain }, { tls: false, server: variables });
    const eOptions = { ...base, user: users.tls, ssl: { ca: clientSsl.ca, rejectUnauthorized: true } };
    const e = await run('e_direct_mariadb_tls', eOptions, { tls: true, client_cert: false });
    const eFull = await run('e_full_direct_mariadb_tls', eOptions, { tls: true, client_cert: false }, true);
    // The very ssl object of (b)/(c): same client context, same session cache behaviour.
    const fOptions = { ...base, user: users.x509, ssl: clientSsl };
    const f = await run('f_direct_mariadb_mtls', fOptions, { tls: true, client_cert: true });
    const fFull = await run('f_full_direct_mariadb_mtls', fOptions, { tls: true, client_cert: true }, true);
    return { e, f, eFull, fFull };
  } catch (error) {
    skipped('e_direct_mariadb_tls', `private MariaDB setup failed: ${(error as Error).message}`);
    return { e: null, f: null, eFull: null, fFull: null };
  } finally {
    await server.stop();
  }
}

async function parent(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-connect-'));
  const children: MeshgateChild[] = [];
  const provisioned = await provision(MARIADB, DATABASE, { [ROLE]: { privileges: ['SELECT'] } });
  let admin: { password: string; drop(): Promise<void> } | null = null;
  try {
    admin = await provisionLeaseAdmin(MARIADB, ADMIN_USER, [ROLE]);
    const account = provisioned.accounts.get(ROLE)!;
    const { server, client } = await benchCertificates(dir, NAMESPACE);
    await writeBenchPolicy(dir, 'bench-connect', { from: [{ source: { namespaces: [NAMESPACE] } }], to: [{ mariadb: { databases: [DATABASE], role: ROLE } }] });
    await writeFile(join(dir, 'reader.pw'), account.password, { mode: 0o600 });
    await writeFile(join(dir, 'admin.pw'), admin.password, { mode: 0o600 });
    const common = {
      listener: { host: '127.0.0.1', port: 0, tls: { cert: server.certPath, key: server.keyPath } },
      trust: { bundles: [client.bundlePath], trustDomains: [TRUST_DOMAIN] },
      policy: { dir: 'policy' },
    };
    await writeFile(
      join(dir, 'static.yaml'),
      stringify({
        ...common,
        upstream: { host: MARIADB.host, port: MARIADB.port, roles: { [ROLE]: { user: account.user, password: { file: 'reader.pw' } } }, pool: { maxIdlePerKey: 0 } },
        audit: { file: 'audit-static.jsonl' },
      }),
    );
    await writeFile(
      join(dir, 'dynamic.yaml'),
      stringify({
        ...common,
        upstream: { host: MARIADB.host, port: MARIADB.port, credentials: { admin: { user: ADMIN_USER, password: { file: 'admin.pw' } } } },
        state: { embedded: { dir: 'state' }, replicaId: 'bench-connect' },
        audit: { file: 'audit-dynamic.jsonl' },
      }),
    );
    const staticMeshgate = await startChild(join(dir, 'static.yaml'));
    children.push(staticMeshgate);
    const dynamicMeshgate = await startChild(join(dir, 'dynamic.yaml'));
    children.push(dynamicMeshgate);

    const ssl = { cert: await readFile(client.certPath), key: await readFile(client.keyPath), ca: await readFile(client.bundlePath) };
    const direct = { host: MARIADB.host, port: MARIADB.port, user: account.user, password: account.password, database: DATABASE };
    const viaMeshgate = (port: number) => ({ host: '127.0.0.1', port, user: 'loadgen', password: '', database: DATABASE, ssl });
    const reset = (child: MeshgateChild) => async () => {
      if ((await child.ask('reset')) !== 'ok') throw new Error('meshgate child did not reset its samples');
    };
    const stats = async (child: MeshgateChild) => {
      const line = await child.ask('stats');
      if (!line.startsWith('stats ')) throw new Error(`unexpected answer from meshgate child: ${line}`);
      return JSON.parse(line.slice('stats '.length)) as Record<string, Record<string, number>>;
    };

    const a = await measure(direct, CONNECTS);
    console.log(JSON.stringify({ scenario: 'a_direct_mariadb', connects: CONNECTS, ...a, tls: false }));
    const b = await measure(viaMeshgate(staticMeshgate.port), CONNECTS, { afterWarmup: reset(staticMeshgate) });
    const bInside = await stats(staticMeshgate);
    console.log(JSON.stringify({ scenario: 'b_meshgate_static_unpooled', connects: CONNECTS, ...b, tls: true, upstream_pool: bInside['pool'] }));
    const c = await measure(viaMeshgate(dynamicMeshgate.port), CONNECTS, { afterWarmup: reset(dynamicMeshgate) });
    const cInside = await stats(dynamicMeshgate);
    console.log(JSON.stringify({ scenario: 'c_meshgate_dynamic_pooled', connects: CONNECTS, ...c, tls: true, upstream_pool: cInside['pool'] }));
    const acquire = cInside['acquire']!;
    console.log(
      JSON.stringify({
        scenario: 'd_meshgate_upstream_acquire',
        connects: acquire['count'],
        p50_ms: acquire['p50_ms'],
        p99_ms: acquire['p99_ms'],
        mean_ms: acquire['mean_ms'],
        pooled_takes: cInside['pooled']!['count'],
        fresh_logins: cInside['fresh']!['count'],
        pool_take_only: cInside['take'],
        // The same measurement during (b): every acquisition there is a MariaDB login.
        upstream_login: bInside['acquire'],
      }),
    );
    let cFull: Measured | null = null;
    try {
      cFull = await measure(viaMeshgate(dynamicMeshgate.port), CONNECTS, { fullHandshakes: true });
      console.log(JSON.stringify({ scenario: 'c_full_meshgate_dynamic_pooled', connects: CONNECTS, ...cFull, tls: true }));
    } catch (error) {
      console.log(JSON.stringify({ scenario: 'c_full_meshgate_dynamic_pooled', skipped: true, reason: `failed: ${(error as Error).message}` }));
    }
    const { e, f, eFull, fFull } = await privateScenarios({ cert: server.certPath, key: server.keyPath, ca: client.bundlePath }, ssl);
    const ratio = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? null : round(x / y));
    console.log(
      JSON.stringify({
        scenario: 'ratios',
        c_over_e_p50: ratio(c.p50_ms, e?.p50_ms),
        c_over_e_mean: ratio(c.mean_ms, e?.mean_ms),
        c_over_f_p50: ratio(c.p50_ms, f?.p50_ms),
        c_over_f_mean: ratio(c.mean_ms, f?.mean_ms),
        c_over_a_p50: ratio(c.p50_ms, a.p50_ms),
        c_over_a_mean: ratio(c.mean_ms, a.mean_ms),
        c_over_b_p50: ratio(c.p50_ms, b.p50_ms),
        c_over_b_mean: ratio(c.mean_ms, b.mean_ms),
        pooled_acquire_over_login_p50: round(acquire['p50_ms']! / bInside['acquire']!['p50_ms']!),
        // Every TLS connect a full handshake (no session resumption) on both sides.
        full_c_over_e_p50: ratio(cFull?.p50_ms, eFull?.p50_ms),
        full_c_over_e_mean: ratio(cFull?.mean_ms, eFull?.mean_ms),
        full_c_over_f_p50: ratio(cFull?.p50_ms, fFull?.p50_ms),
        full_c_over_f_mean: ratio(cFull?.mean_ms, fFull?.mean_ms),
      }),
    );
  } finally {
    for (const child of children) await stopChild(child);
    // meshgate drops its session leases when it stops; anything a failed run left goes here.
    const accounts = openMariadbAccounts({ ...MARIADB });
    try {
      for (const leftover of await accounts.listManagedAccounts()) {
        if (leftover.username.startsWith(`mg-${NAMESPACE}.`)) await accounts.dropAccount(leftover, { killSessions: true });
      }
    } finally {
      await accounts.close();
    }
    await admin?.drop();
    await provisioned.drop();
    await rm(dir, { recursive: true, force: true });
    // Fails loudly if this benchmark left anything of its own in MariaDB.
    const check = await connectAdmin(MARIADB);
    try {
      const [rows] = await check.query<mysql.RowDataPacket[]>('SELECT User FROM mysql.user WHERE User LIKE ? OR User = ?', [`mg-${NAMESPACE}.%`, ADMIN_USER]);
      if (rows.length > 0) throw new Error(`bench:connect left accounts behind: ${rows.map((r) => String(r['User'])).join(', ')}`);
    } finally {
      await check.end();
    }
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
else await parent();
