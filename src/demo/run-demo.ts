/**
 * `meshgate demo`: the whole product on embedded defaults, in one command. A CA, three
 * workloads, a MariaDB database with a read-write and a read-only role, policy files,
 * meshgate itself, real clients going through it, and the audit trail they leave.
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { verifyAuditFile } from '../audit/verify.ts';
import { summarize } from '../cli/commands/audit.ts';
import type { CliIO } from '../cli/command.ts';
import { loadConfigFile } from '../config/load.ts';
import { initCa, issueServerCert, issueSvid } from '../identity/ca.ts';
import { silentLogger } from '../log.ts';
import { startMeshgate } from '../server.ts';
import { DEMO_ADMIN_USER, DEMO_DATABASE, DEMO_ROLES, DEMO_TRUST_DOMAIN, DEMO_WORKLOADS, writeDemoFiles } from './files.ts';
import { provision, provisionLeaseAdmin, type AdminTarget } from './provision.ts';
import type { LeaseRecord } from '../store/types.ts';
import { startFirestoreEmulator } from '../engines/firestore/emulator.ts';
import { DEMO_FIRESTORE_PROJECT, EXPECTED_FIRESTORE, runFirestoreDemo, type FirestoreOutcome } from './firestore-demo.ts';

export interface DemoOptions {
  readonly dir: string;
  readonly mariadb: AdminTarget;
  /** Leave the demo database, roles and accounts in MariaDB afterwards. */
  readonly keep: boolean;
}

interface Outcome {
  readonly who: string;
  readonly what: string;
  readonly allowed: boolean;
  readonly detail: string;
}

export async function runDemo(options: DemoOptions, io: CliIO): Promise<boolean> {
  const rel = (p: string) => relative(io.cwd, p) || '.';
  const step = (text: string) => io.out(`  ✔ ${text}`);
  io.out('meshgate demo: identity-aware access to MariaDB\n');

  const caDir = join(options.dir, 'ca');
  await initCa({ dir: caDir, trustDomain: DEMO_TRUST_DOMAIN, force: true });
  step(`CA for trust domain ${DEMO_TRUST_DOMAIN} in ${rel(caDir)}`);
  const server = await issueServerCert({ caDir, outDir: join(options.dir, 'server'), spiffeId: `spiffe://${DEMO_TRUST_DOMAIN}/ns/meshgate/sa/meshgate` });
  const certs: Record<string, { cert: Buffer; key: Buffer; ca: Buffer }> = {};
  for (const [name, spiffeId] of Object.entries(DEMO_WORKLOADS)) {
    const issued = await issueSvid({ caDir, spiffeId, outDir: join(options.dir, 'workloads'), name, ttlSeconds: 3600 });
    certs[name] = { cert: await readFile(issued.certPath), key: await readFile(issued.keyPath), ca: await readFile(issued.bundlePath) };
  }
  step(`1-hour SVIDs (URI SAN only, as Istio issues them) in ${rel(join(options.dir, 'workloads'))}: ${Object.values(DEMO_WORKLOADS).join(', ')}`);

  const provisioned = await provision(
    options.mariadb,
    DEMO_DATABASE,
    { [DEMO_ROLES.writer]: { privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] }, [DEMO_ROLES.reader]: { privileges: ['SELECT'] } },
    [
      'CREATE TABLE {db}.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(100) NOT NULL, qty INT NOT NULL)',
      "INSERT INTO {db}.orders (item, qty) VALUES ('espresso beans', 2), ('oat milk', 6)",
    ],
    { staticAccounts: false },
  );
  const leaseAdmin = await provisionLeaseAdmin(options.mariadb, DEMO_ADMIN_USER, [DEMO_ROLES.writer, DEMO_ROLES.reader]).catch(async (error: unknown) => {
    await provisioned.drop();
    throw error;
  });
  step(`MariaDB ${options.mariadb.host}:${options.mariadb.port}: database ${DEMO_DATABASE}, roles ${DEMO_ROLES.writer} (read-write) and ${DEMO_ROLES.reader} (read-only), and ${DEMO_ADMIN_USER}, which may only create and drop accounts holding those roles`);

  const emulator = await startFirestoreEmulator().catch(async (error: unknown) => {
    await leaseAdmin.drop();
    await provisioned.drop();
    throw error;
  });
  step(`Firestore upstream: ${emulator.description}`);
  const files = await writeDemoFiles(options.dir, server, { user: DEMO_ADMIN_USER, password: leaseAdmin.password }, options.mariadb, {
    emulator: `${emulator.host}:${emulator.port}`,
    project: DEMO_FIRESTORE_PROJECT,
  });
  step(`policy in ${rel(files.policyDir)}, config ${rel(files.configPath)}`);
  const config = loadConfigFile(files.configPath);
  // Each demo run tells its own story: a fresh audit trail.
  await rm(files.auditFile, { force: true });
  const meshgate = await startMeshgate({ ...config, listener: { ...config.listener, port: 0 }, firestore: { ...config.firestore!, port: 0 } }, silentLogger).catch(async (error: unknown) => {
    await emulator.stop();
    throw error;
  });
  const port = meshgate.address.port;
  step(`meshgate listening on 127.0.0.1:${port} for MySQL and 127.0.0.1:${meshgate.firestorePort} for Firestore gRPC (mTLS required), audit to ${rel(files.auditFile)}\n`);

  const outcomes: Outcome[] = [];
  let leases: LeaseRecord[] = [];
  let firestoreOutcomes: FirestoreOutcome[] = [];
  try {
    const connect = (ssl?: mysql.ConnectionOptions['ssl']) =>
      mysql.createConnection({ host: '127.0.0.1', port, user: 'demo', database: DEMO_DATABASE, ssl });
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
    outcomes.push(await viaMariadbCli(port, join(options.dir, 'workloads'), 'orders'));
    leases = await meshgate.credentials!.leases.list();
    firestoreOutcomes = await runFirestoreDemo({ port: meshgate.firestorePort!, emulatorPort: emulator.port, certs });
  } finally {
    // Closing drops the session leases, and with them the MariaDB accounts meshgate made.
    await meshgate.close();
    await emulator.stop();
    if (!options.keep) {
      await leaseAdmin.drop();
      await provisioned.drop();
    }
  }

  io.out('Requests through meshgate (real clients: mysql2 and the mariadb CLI):');
  for (const o of outcomes) {
    io.out(`  ${o.who.padEnd(10)} ${o.allowed ? 'ALLOWED' : 'DENIED '}  ${o.what}\n  ${' '.repeat(10)}          → ${o.detail}`);
  }
  io.out(`\nFirestore through meshgate (@google-cloud/firestore with each workload's SVID; upstream: ${emulator.kind} emulator):`);
  for (const o of firestoreOutcomes) {
    io.out(`  ${o.who.padEnd(10)} ${o.allowed ? 'ALLOWED' : 'DENIED '}  ${o.what}\n  ${' '.repeat(10)}          → ${o.detail}`);
  }
  io.out('\nShort-lived MariaDB accounts meshgate made for these identities (dropped again when it stopped):');
  for (const lease of leases) io.out(`  ${lease.username.padEnd(32)} role ${lease.role.padEnd(12)} for ${lease.principal}, lease ${lease.id.slice(0, 14)}…`);
  io.out(`\nAudit trail (${rel(files.auditFile)}: one event per connection and statement, hash-chained):`);
  const lines = (await readFile(files.auditFile, 'utf8')).split('\n').filter((l) => l !== '');
  for (const line of lines.slice(-60)) io.out('  ' + summarize(JSON.parse(line) as Record<string, unknown>).slice(0, 240));
  const verdict = await verifyAuditFile(files.auditFile);
  io.out(`\nmeshgate audit verify ${rel(files.auditFile)}: ${verdict.ok ? `ok, ${verdict.events} events, chain intact` : `TAMPERED: ${verdict.problem}`}`);
  io.out(
    options.keep
      ? `\nThe demo database and accounts are still in MariaDB. Run meshgate yourself:\n  npx meshgate serve --config ${rel(files.configPath)}\n  mariadb -h 127.0.0.1 -P 3307 --ssl --ssl-ca ${rel(join(options.dir, 'ca/bundle.pem'))} --ssl-cert ${rel(join(options.dir, 'workloads/orders.crt'))} --ssl-key ${rel(join(options.dir, 'workloads/orders.key'))} ${DEMO_DATABASE}`
      : `\nMariaDB objects were removed again; run with --keep to leave them and serve ${rel(files.configPath)} yourself.`,
  );
  const expected = [true, true, true, false, false, false, false];
  return (
    outcomes.slice(0, expected.length).every((o, i) => o.allowed === expected[i]) &&
    firestoreOutcomes.length === EXPECTED_FIRESTORE.length &&
    firestoreOutcomes.every((o, i) => o.allowed === EXPECTED_FIRESTORE[i])
  );
}

/** The mariadb command-line client, if installed, through meshgate with its SVID files. */
async function viaMariadbCli(port: number, certDir: string, workload: string): Promise<Outcome> {
  const what = 'mariadb CLI: SELECT CURRENT_USER(), CURRENT_ROLE()';
  const args = ['-h', '127.0.0.1', '-P', String(port), '-u', 'demo', '--ssl', '--ssl-ca', join(certDir, 'bundle.pem'), '--ssl-cert', join(certDir, `${workload}.crt`), '--ssl-key', join(certDir, `${workload}.key`), '--batch', '--skip-column-names', '-e', 'SELECT CURRENT_USER(), CURRENT_ROLE()', DEMO_DATABASE];
  try {
    const { stdout } = await promisify(execFile)('mariadb', args, { timeout: 10_000 });
    return { who: workload, what, allowed: true, detail: stdout.trim().replace(/\t/g, ' as ') };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { who: workload, what, allowed: false, detail: 'skipped: the mariadb client is not installed (apt-get install mariadb-client)' };
    return { who: workload, what, allowed: false, detail: (e.stderr ?? e.message).trim() };
  }
}
