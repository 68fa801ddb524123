/**
 * `meshgate demo`: the whole product on embedded defaults, in one command. A CA, three
 * workloads, a MariaDB database with a read-write and a read-only role, policy files,
 * meshgate itself (launching its own Firestore emulator), real clients going through it,
 * and the audit trail they leave.
 */
import { readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { summarize, verifyAuditFile } from '../audit/index.ts';
import { loadConfigFile } from '../config/load.ts';
import { mgError } from '../errors/index.ts';
import { initCa, issueServerCert, issueSvid } from '../identity/index.ts';
import { silentLogger } from '../log.ts';
import { startMeshgate, type RunningMeshgate } from '../server.ts';
import type { LeaseRecord } from '../store/index.ts';
import { DEMO_TRUST_DOMAIN, DEMO_WORKLOADS, writeDemoFiles, type DemoNames } from './files.ts';
import { DEMO_FIRESTORE_PROJECT, EXPECTED_FIRESTORE, runFirestoreDemo, type FirestoreOutcome } from './firestore-demo.ts';
import { dropKept, forgetKept, readKept, recordKept } from './kept.ts';
import { EXPECTED_MYSQL, runMysqlDemo, type Outcome } from './mysql-demo.ts';
import { connectAdmin, provision, provisionLeaseAdmin, type AdminTarget } from './provision.ts';

export interface DemoOptions {
  readonly dir: string;
  readonly mariadb: AdminTarget;
  /** Leave the demo database, roles and accounts in MariaDB afterwards. */
  readonly keep: boolean;
  readonly names: DemoNames;
}

/** Where the demo tells its story: the `meshgate demo` command passes its own output. */
export interface DemoIO {
  out(line: string): void;
  /** Paths are printed relative to it. */
  readonly cwd: string;
}

type Certs = Record<string, { cert: Buffer; key: Buffer; ca: Buffer }>;

export async function runDemo(options: DemoOptions, io: DemoIO): Promise<boolean> {
  const rel = (p: string) => relative(io.cwd, p) || '.';
  const step = (text: string) => io.out(`  ✔ ${text}`);
  const { names } = options;
  io.out('meshgate demo: identity-aware access to MariaDB\n');

  const caDir = join(options.dir, 'ca');
  await initCa({ dir: caDir, trustDomain: DEMO_TRUST_DOMAIN, force: true });
  step(`CA for trust domain ${DEMO_TRUST_DOMAIN} in ${rel(caDir)}`);
  const server = await issueServerCert({ caDir, outDir: join(options.dir, 'server'), spiffeId: `spiffe://${DEMO_TRUST_DOMAIN}/ns/meshgate/sa/meshgate` });
  const certs: Certs = {};
  for (const [name, spiffeId] of Object.entries(DEMO_WORKLOADS)) {
    const issued = await issueSvid({ caDir, spiffeId, outDir: join(options.dir, 'workloads'), name, ttlSeconds: 3600 });
    certs[name] = { cert: await readFile(issued.certPath), key: await readFile(issued.keyPath), ca: await readFile(issued.bundlePath) };
  }
  step(`1-hour SVIDs (URI SAN only, as Istio issues them) in ${rel(join(options.dir, 'workloads'))}: ${Object.values(DEMO_WORKLOADS).join(', ')}`);

  // The login first: a run that cannot log in must not record objects it never made.
  await (await connectAdmin(options.mariadb)).end();
  // A run kept earlier in this directory is replaced, not left behind under other names.
  const earlier = await readKept(options.dir);
  if (earlier !== null) {
    const at = `${earlier.mariadb.host}:${earlier.mariadb.port}`;
    if (at !== `${options.mariadb.host}:${options.mariadb.port}`) {
      throw mgError('MG_USAGE', `${rel(options.dir)} holds a demo kept in MariaDB at ${at}: drop it first (meshgate demo --clean --dir ${rel(options.dir)} --mariadb mysql://user:password@${at}) or use another --dir`);
    }
    await dropKept(options.mariadb, earlier);
    step(`dropped what an earlier run kept in MariaDB: database ${earlier.names.database}, its roles and accounts`);
  }
  // Recorded before anything exists, so even a run that dies half-way can be cleaned up.
  await recordKept(options.dir, { mariadb: { host: options.mariadb.host, port: options.mariadb.port }, names });

  let meshgate: RunningMeshgate | null = null;
  let failed = true;
  try {
    await provision(
      options.mariadb,
      names.database,
      { [names.roles.writer]: { privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] }, [names.roles.reader]: { privileges: ['SELECT'] } },
      [
        'CREATE TABLE {db}.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(100) NOT NULL, qty INT NOT NULL)',
        "INSERT INTO {db}.orders (item, qty) VALUES ('espresso beans', 2), ('oat milk', 6)",
      ],
      { staticAccounts: false },
    );
    const leaseAdmin = await provisionLeaseAdmin(options.mariadb, names.admin, [names.roles.writer, names.roles.reader]);
    step(
      `MariaDB ${options.mariadb.host}:${options.mariadb.port}: database ${names.database}, roles ${names.roles.writer} (read-write) and ${names.roles.reader} (read-only), ` +
        `and ${names.admin}, which may only create and drop accounts holding those roles`,
    );
    const files = await writeDemoFiles(options.dir, names, server, leaseAdmin.password, options.mariadb, DEMO_FIRESTORE_PROJECT);
    step(`policy in ${rel(files.policyDir)}, config ${rel(files.configPath)}`);
    const config = loadConfigFile(files.configPath);
    // Each demo run tells its own story: a fresh audit trail.
    await rm(files.auditFile, { force: true });
    meshgate = await startMeshgate({ ...config, listener: { ...config.listener!, port: 0 }, firestore: { ...config.firestore!, port: 0 } }, silentLogger);
    const emulator = meshgate.firestoreEmulator!;
    step(`Firestore upstream, launched by meshgate: ${emulator.description}`);
    step(`meshgate listening on 127.0.0.1:${meshgate.address!.port} for MySQL and 127.0.0.1:${meshgate.firestorePort} for Firestore gRPC (mTLS required), audit to ${rel(files.auditFile)}\n`);

    const outcomes = await runMysqlDemo({ port: meshgate.address!.port, database: names.database, certs, certDir: join(options.dir, 'workloads') });
    const leases = await meshgate.credentials!.leases.list();
    const firestoreOutcomes = await runFirestoreDemo({ port: meshgate.firestorePort!, emulator, certs });
    // Closing drops the session leases, and with them the MariaDB accounts meshgate made.
    await meshgate.close();
    meshgate = null;
    await report({ outcomes, firestoreOutcomes, emulatorKind: emulator.kind, leases, files, options, rel }, io);
    failed = false;
    return (
      outcomes.length >= EXPECTED_MYSQL.length &&
      outcomes.slice(0, EXPECTED_MYSQL.length).every((o, i) => o.allowed === EXPECTED_MYSQL[i]) &&
      firestoreOutcomes.length === EXPECTED_FIRESTORE.length &&
      firestoreOutcomes.every((o, i) => o.allowed === EXPECTED_FIRESTORE[i])
    );
  } finally {
    const cleanup = async () => {
      await meshgate?.close();
      if (options.keep) return;
      await dropKept(options.mariadb, { mariadb: options.mariadb, names });
      await forgetKept(options.dir);
    };
    // After a failure its error is the one to show; what cleanup leaves stays recorded for --clean.
    if (failed) await cleanup().catch(() => undefined);
    else await cleanup();
  }
}

/** `meshgate demo --clean`: drops what a kept run left in MariaDB; the files stay. */
export async function cleanDemo(options: { readonly dir: string; readonly mariadb: AdminTarget }, io: DemoIO): Promise<void> {
  const rel = relative(io.cwd, options.dir) || '.';
  const kept = await readKept(options.dir);
  if (kept === null) {
    io.out(`meshgate demo --clean: ${rel} records no kept demo objects; nothing to drop`);
    return;
  }
  const { leaseAccounts } = await dropKept(options.mariadb, kept);
  await forgetKept(options.dir);
  const { names } = kept;
  io.out(
    `meshgate demo --clean: dropped database ${names.database}, roles ${names.roles.writer} and ${names.roles.reader}, account ${names.admin}` +
      `${leaseAccounts > 0 ? ` and ${leaseAccounts} account(s) meshgate had made for them` : ''} from MariaDB at ${kept.mariadb.host}:${kept.mariadb.port}. ` +
      `The files stay in ${rel} (rm -r ${rel} removes them).`,
  );
}

interface Report {
  readonly outcomes: readonly Outcome[];
  readonly firestoreOutcomes: readonly FirestoreOutcome[];
  readonly emulatorKind: string;
  readonly leases: readonly LeaseRecord[];
  readonly files: { readonly configPath: string; readonly auditFile: string };
  readonly options: DemoOptions;
  readonly rel: (p: string) => string;
}

async function report(r: Report, io: DemoIO): Promise<void> {
  const { files, options, rel } = r;
  io.out('Requests through meshgate (real clients: mysql2 and the mariadb CLI):');
  for (const o of r.outcomes) {
    io.out(`  ${o.who.padEnd(10)} ${o.allowed ? 'ALLOWED' : 'DENIED '}  ${o.what}\n  ${' '.repeat(10)}          → ${o.detail}`);
  }
  io.out(`\nFirestore through meshgate (@google-cloud/firestore with each workload's SVID; upstream: ${r.emulatorKind} emulator):`);
  for (const o of r.firestoreOutcomes) {
    io.out(`  ${o.who.padEnd(10)} ${o.allowed ? 'ALLOWED' : 'DENIED '}  ${o.what}\n  ${' '.repeat(10)}          → ${o.detail}`);
  }
  io.out('\nShort-lived MariaDB accounts meshgate made for these identities (dropped again when it stopped):');
  for (const lease of r.leases) io.out(`  ${lease.username.padEnd(32)} role ${lease.role.padEnd(12)} for ${lease.principal}, lease ${lease.id.slice(0, 14)}…`);
  io.out(`\nAudit trail (${rel(files.auditFile)}: one event per connection and statement, hash-chained):`);
  const lines = (await readFile(files.auditFile, 'utf8')).split('\n').filter((l) => l !== '');
  for (const line of lines.slice(-60)) io.out('  ' + summarize(JSON.parse(line) as Record<string, unknown>).slice(0, 240));
  const verdict = await verifyAuditFile(files.auditFile);
  io.out(`\nmeshgate audit verify ${rel(files.auditFile)}: ${verdict.ok ? `ok, ${verdict.events} events, chain intact` : `TAMPERED: ${verdict.problem}`}`);
  const dirArg = rel(options.dir) === '.meshgate/demo' ? '' : ` --dir ${rel(options.dir)}`;
  io.out(
    options.keep
      ? `\nThe demo database and accounts are still in MariaDB. Run meshgate yourself (it launches its own Firestore emulator):\n` +
          `  npx meshgate serve --config ${rel(files.configPath)}\n` +
          `  mariadb -h 127.0.0.1 -P 3307 --ssl --ssl-ca ${rel(join(options.dir, 'ca/bundle.pem'))} --ssl-cert ${rel(join(options.dir, 'workloads/orders.crt'))} --ssl-key ${rel(join(options.dir, 'workloads/orders.key'))} ${options.names.database}\n` +
          `When you are done, drop them: npm run demo -- --clean${dirArg}`
      : `\nMariaDB objects were removed again; run with --keep to leave them and serve ${rel(files.configPath)} yourself.`,
  );
}
