/**
 * `meshgate demo` end to end, as `npm run demo` runs it (real MariaDB, real clients), in a
 * child process so that what it prints to stderr is seen as a user would see it. Each run
 * has its own MariaDB names and directory: test runs and `npm run demo` go side by side.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import mysql from 'mysql2/promise';
import { runCli } from '../../src/cli/main.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { emulatorClientSettings, meshgateClientSettings } from '../../src/demo/firestore-sdk.ts';
import { demoNames, type DemoNames } from '../../src/demo/files.ts';
import { DEMO_FIRESTORE_PROJECT } from '../../src/demo/firestore-demo.ts';
import { connectAdmin } from '../../src/demo/provision.ts';
import { silentLogger } from '../../src/log.ts';
import { startMeshgate } from '../../src/server.ts';
import { captureIO } from '../helpers/cli.ts';
import { serviceMissing } from '../helpers/services.ts';
import { MARIADB } from '../helpers/meshgate.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const MARIADB_URL = `mysql://${encodeURIComponent(MARIADB.user)}:${encodeURIComponent(MARIADB.password)}@${MARIADB.host}:${MARIADB.port}`;
const require = createRequire(import.meta.url);

/** Runs `meshgate demo` in its own process; resolves with its exit code, stdout and stderr. */
function demoProcess(args: readonly string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'demo', '--mariadb', MARIADB_URL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Each run: a temp dir and names of its own; `after` drops whatever a failed run kept. */
async function freshRun(): Promise<{ dir: string; names: DemoNames; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-demo-'));
  const names = demoNames(`mgt_demo_${randomBytes(4).toString('hex')}`);
  return {
    dir,
    names,
    async cleanup() {
      try {
        await runCli(['demo', '--clean', '--dir', dir, '--mariadb', MARIADB_URL], captureIO(dir));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The demo's objects still in MariaDB: its database, roles, admin account and any account holding its roles. */
async function leftInMariadb(names: DemoNames): Promise<string[]> {
  const admin = await connectAdmin(MARIADB);
  try {
    const roles = [names.roles.writer, names.roles.reader];
    const [databases] = await admin.query<mysql.RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [names.database]);
    const [users] = await admin.query<mysql.RowDataPacket[]>('SELECT User AS name FROM mysql.user WHERE User IN (?, ?, ?)', [...roles, names.admin]);
    const [holders] = await admin.query<mysql.RowDataPacket[]>('SELECT User AS name FROM mysql.roles_mapping WHERE Role IN (?, ?) AND User LIKE ?', [...roles, 'mg-%']);
    return [...databases, ...users, ...holders].map((row) => String(row['name']));
  } finally {
    await admin.end();
  }
}

const LIBRARY_WARNINGS = /MetadataLookupWarning|DeprecationWarning|\(node:\d+\) \w*Warning/;

const missing = await serviceMissing('mariadb');

describe('meshgate demo', { skip: missing, timeout: 240_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  it('shows allowed and denied outcomes, the audit lines and an intact chain, then cleans up MariaDB', async () => {
    const run = await freshRun();
    cleanups.push(run.cleanup);
    const { code, stdout, stderr } = await demoProcess(['--dir', run.dir, '--name', run.names.database]);
    const text = stdout + stderr;
    assert.equal(code, 0, text);
    assert.match(text, /orders\s+ALLOWED\s+INSERT/);
    assert.match(text, /analytics\s+DENIED\s+INSERT[\s\S]*MariaDB 1142/);
    assert.match(text, /staging\s+DENIED[\s\S]*\[MG_POLICY_DENIED\] denied by rule deny-non-production/);
    assert.match(text, /\[MG_CLIENT_CERT_MISSING\]/);
    assert.match(text, /\[MG_TLS_REQUIRED\]/);
    assert.match(text, /trace=4bf92f35/, 'the traceparent of the demo query reaches the audit line');
    assert.match(text, /chain intact/);
    assert.doesNotMatch(stderr, LIBRARY_WARNINGS, `a normal run prints no library warnings:\n${stderr}`);
    assert.deepEqual(await leftInMariadb(run.names), [], 'without --keep nothing stays in MariaDB');
  });

  it('--keep leaves a config that serves MySQL and Firestore as it is; --clean drops what it kept', async () => {
    const run = await freshRun();
    cleanups.push(run.cleanup);
    const demo = await demoProcess(['--dir', run.dir, '--name', run.names.database, '--keep']);
    assert.equal(demo.code, 0, demo.stdout + demo.stderr);
    assert.doesNotMatch(demo.stderr, LIBRARY_WARNINGS, demo.stderr);
    assert.match(demo.stdout, /npm run demo -- --clean --dir /);

    // Only the ports change: 3307 and 8443 may be taken on a shared machine.
    const config = loadConfigFile(join(run.dir, 'meshgate.yaml'));
    assert.deepEqual(config.firestore?.upstream, { launchEmulator: { port: 0 } });
    const meshgate = await startMeshgate({ ...config, listener: { ...config.listener!, port: 0 }, firestore: { ...config.firestore!, port: 0 } }, silentLogger);
    const { Firestore } = await import('@google-cloud/firestore');
    const gaxGrpc = (require('google-gax') as { grpc: typeof import('@grpc/grpc-js') }).grpc;
    const pem = (file: string) => readFile(join(run.dir, 'workloads', file));
    const files = { ca: await pem('bundle.pem'), key: await pem('orders.key'), cert: await pem('orders.crt') };
    const db = new Firestore({ projectId: DEMO_FIRESTORE_PROJECT, ...meshgateClientSettings(gaxGrpc, { host: '127.0.0.1', port: meshgate.firestorePort! }, files) });
    let conn: mysql.Connection | undefined;
    try {
      conn = await mysql.createConnection({ host: '127.0.0.1', port: meshgate.address!.port, user: 'demo', database: run.names.database, ssl: files });
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM orders');
      assert.ok(Number(rows[0]!['n']) >= 2, 'the rows the demo wrote are there');

      const emulator = meshgate.firestoreEmulator!;
      const seed = new Firestore({ projectId: DEMO_FIRESTORE_PROJECT, ...emulatorClientSettings(emulator) });
      await seed.doc('orders/kept-1').set({ item: 'tea', qty: 1 });
      await seed.terminate();
      const snapshot = await db.doc('orders/kept-1').get();
      assert.deepEqual(snapshot.data(), { item: 'tea', qty: 1 });
    } finally {
      await conn?.end().catch(() => undefined);
      await db.terminate();
      await meshgate.close();
    }

    // An account a killed meshgate left behind (no shutdown to drop it): --clean finds it by role.
    const leftover = `mg-demo-test-${randomBytes(4).toString('hex')}`;
    cleanups.push(async () => {
      const again = await connectAdmin(MARIADB);
      await again.query("DROP USER IF EXISTS ?@'%'", [leftover]).finally(() => again.end());
    });
    const admin = await connectAdmin(MARIADB);
    try {
      await admin.query("CREATE USER ?@'%' IDENTIFIED BY ?", [leftover, randomBytes(12).toString('hex')]);
      await admin.query(`GRANT \`${run.names.roles.writer}\` TO ?@'%'`, [leftover]);
    } finally {
      await admin.end();
    }
    assert.ok((await leftInMariadb(run.names)).length > 0, 'kept objects are there before --clean');
    const io = captureIO(run.dir);
    assert.equal(await runCli(['demo', '--clean', '--dir', run.dir, '--mariadb', MARIADB_URL], io), 0, io.all.join('\n'));
    assert.match(io.stdout.join('\n'), new RegExp(`dropped database ${run.names.database}[\\s\\S]*1 account\\(s\\) meshgate had made`));
    assert.deepEqual(await leftInMariadb(run.names), [], '--clean leaves nothing of the demo in MariaDB');
  });
});
