/**
 * A rolling upgrade as Kubernetes runs one, with real processes: replica A serves writers
 * through a Service (new connections go to ready replicas), replica B starts on the same
 * ConfigMap and PostgreSQL state, A gets SIGTERM and drains, the writers move to B. Nothing
 * is lost: every write the client saw succeed is in MariaDB and has exactly one audit event
 * in the PostgreSQL export, every write that failed never ran; A's session leases are revoked
 * with their accounts, a CI credential issued through A lives on and B revokes it.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { stringify } from 'yaml';
import { verifyPostgresAudit } from '../../../src/audit-pg/verify.ts';
import { openPostgresStore } from '../../../src/store/index.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { existingAccounts, MARIADB, RUN_ID, startHarness, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { killAll, startServe } from '../../helpers/serve-process.ts';
import { startServiceFront, type ServiceFront } from '../../helpers/service-front.ts';
import { PG_URL, serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb', 'postgres');

const SCHEMA = `mgt_roll_${RUN_ID}`;
const TABLE = `mgt_roll_${RUN_ID}_audit`;
const APP_NS = `roll-${RUN_ID}`;
const CI_NS = `rollci-${RUN_ID}`;
const WORKLOADS = {
  app: `spiffe://${TRUST_DOMAIN}/ns/${APP_NS}/sa/app`,
  ci: `spiffe://${TRUST_DOMAIN}/ns/${CI_NS}/sa/deployer`,
  ops: `spiffe://${TRUST_DOMAIN}/ns/ops-${RUN_ID}/sa/admin`,
} as const;
const HEAD = 'apiVersion: meshgate.dev/v1alpha1\nkind: AccessPolicy\n';
const POLICY = `${HEAD}metadata: { name: roll }
spec:
  action: ALLOW
  rules:
    - id: app
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/${APP_NS}/sa/app"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}" } }]
    - id: ci
      from: [{ source: { namespaces: ["${CI_NS}"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}", direct: true } }]
`;
const WRITERS = 4;

describe('a rolling upgrade loses no write, lease or audit event (two meshgate processes, one PostgreSQL)', { skip: missing, timeout: 180_000 }, () => {
  let h: Harness;
  let front: ServiceFront | null = null;
  let store: StateStore | null = null;
  const pgAdmin = async (sql: string) => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };

  before(async () => {
    h = await startHarness({ name: 'roll', workloads: WORKLOADS, credentials: 'dynamic', policy: POLICY, setupSql: ['CREATE TABLE {db}.rolled (id INT PRIMARY KEY, writer INT NOT NULL)'] });
  });
  after(() =>
    cleanup(
      killAll,
      () => front?.close(),
      async () => {
        // Whatever a failed run left: every account a lease of this run names.
        if (store === null) return;
        const leases = await store.listLeases();
        const admin = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, password: MARIADB.password });
        try {
          for (const username of await existingAccounts(leases.map((lease) => lease.username))) await admin.query('DROP USER IF EXISTS ?@?', [username, '%']);
        } finally {
          await admin.end();
        }
        await store.close();
      },
      () => h?.stop(),
      () => pgAdmin(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE; DROP TABLE IF EXISTS ${TABLE}`),
    ),
  );

  it('moves writers from A to B with every acknowledged write in MariaDB and audited once, and every lease accounted for', async () => {
    // One ConfigMap for both replicas: each pod's name makes its replica id and audit file.
    const config = join(h.dir, 'roll.yaml');
    await writeFile(
      config,
      stringify({
        listener: { host: '127.0.0.1', port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key' } },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
        upstream: { host: MARIADB.host, port: MARIADB.port, credentials: { admin: { user: h.adminUser, password: { file: 'secrets/admin' } } } },
        state: { postgres: { url: { env: 'MESHGATE_STATE_URL' }, schema: SCHEMA }, replicaId: '${env:POD_NAME}' },
        policy: { dir: 'policy' },
        audit: { file: 'audit-${env:POD_NAME}.jsonl', export: { postgres: { url: { env: 'MESHGATE_STATE_URL' }, table: TABLE, interval: '1s' } } },
        admin: { host: '127.0.0.1', port: 0, principals: [WORKLOADS.ops] },
        metrics: { listen: '127.0.0.1:0' },
        shutdown: { gracePeriod: '2s' },
      }),
    );
    const pod = (name: string) => ({ POD_NAME: `${name}-${RUN_ID}`, MESHGATE_STATE_URL: PG_URL });
    const a = await startServe(config, pod('meshgate-a'));
    store = await openPostgresStore({ connectionString: PG_URL, schema: SCHEMA, owner: 'roll-test' });
    front = await startServiceFront();
    front.add(a);
    await until(() => front!.ready.includes(a.port), 'A is ready behind the Service');

    // Writers: each INSERT's outcome as the client saw it.
    const acked: number[] = [];
    const failed: { id: number; code: unknown; message: string }[] = [];
    let nextId = 1;
    let writing = true;
    const writer = async (w: number) => {
      let conn: mysql.Connection | null = null;
      while (writing) {
        const id = nextId++;
        try {
          conn ??= await connectVia(front!.port, h);
          await conn.query(`INSERT INTO rolled VALUES (${id}, ${w})`);
          acked.push(id);
        } catch (error) {
          failed.push({ id, code: (error as { code?: unknown }).code, message: (error as Error).message });
          conn?.destroy();
          conn = null;
        }
      }
      await conn?.end();
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    await new Promise((resolve) => setTimeout(resolve, 500));

    // A CI job takes a direct credential through A before the roll.
    const issued = await adminPost(a.adminPort!, '/v1/creds', 'ci', { database: h.database }, h);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));

    const b = await startServe(config, pod('meshgate-b'));
    front.add(b);
    await until(() => front!.ready.includes(b.port), 'B is ready behind the Service');
    const beforeRoll = acked.length;
    a.child.kill('SIGTERM');
    await until(() => !front!.ready.includes(a.port), 'A leaves the Service');
    const { code } = await a.exited;
    assert.equal(code, 0, a.stderr());
    await new Promise((resolve) => setTimeout(resolve, 500));
    const afterRoll = acked.length;
    writing = false;
    await Promise.all(writers);
    assert.ok(beforeRoll > 20 && acked.length > afterRoll && afterRoll > beforeRoll, `writes went on through the roll: ${beforeRoll} → ${afterRoll} → ${acked.length}`);

    // Every acknowledged write is there; every failed one never ran, and failed only as A's end says.
    const inTable = await rowsOf(h);
    assert.deepEqual([...inTable].sort((x, y) => x - y), [...acked].sort((x, y) => x - y), 'exactly the acknowledged writes are in MariaDB');
    for (const failure of failed) assert.ok(failure.code === 1053 || /MG_SHUTTING_DOWN/.test(failure.message), JSON.stringify(failure));

    // The CI credential outlived its replica, still logs in, and B (same state) revokes it.
    const leaseId = String(issued.body['leaseId']);
    assert.equal((await store.getLease(leaseId))?.state, 'active');
    const ci = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: String(issued.body['username']), password: String(issued.body['password']), database: h.database });
    await ci.query('SELECT COUNT(*) FROM rolled');
    await ci.end();
    const revoked = await adminPost(b.adminPort!, '/v1/leases/revoke', 'ops', { leaseId, reason: 'rolled' }, h);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal((await store.getLease(leaseId))?.state, 'revoked');

    b.child.kill('SIGTERM');
    assert.equal((await b.exited).code, 0, b.stderr());
    const leases = await store.listLeases();
    assert.ok(leases.some((lease) => lease.owner === `meshgate-a-${RUN_ID}`) && leases.some((lease) => lease.owner === `meshgate-b-${RUN_ID}`));
    assert.deepEqual(leases.filter((lease) => lease.state !== 'revoked').map((lease) => lease.id), [], 'no lease is left live by either replica');
    assert.deepEqual(await existingAccounts(leases.map((lease) => lease.username)), [], 'and no account');

    // The audit: each replica's file is whole in PostgreSQL, each acknowledged write once.
    const { rows } = await pgAdmin(`SELECT replica, line_text FROM ${TABLE} ORDER BY replica, seq`);
    for (const name of ['meshgate-a', 'meshgate-b']) {
      const file = (await readFile(join(h.dir, `audit-${name}-${RUN_ID}.jsonl`), 'utf8')).trimEnd().split('\n');
      assert.deepEqual(rows.filter((row) => row.replica === `${name}-${RUN_ID}`).map((row) => row.line_text), file, `${name}'s audit is exported whole`);
    }
    const audited = new Map<number, number>();
    for (const { line_text } of rows) {
      const event = JSON.parse(line_text) as Record<string, unknown>;
      const match = /^INSERT INTO rolled VALUES \((\d+),/.exec(String(event['statement'] ?? ''));
      if (event['type'] === 'statement' && match) audited.set(Number(match[1]), (audited.get(Number(match[1])) ?? 0) + 1);
    }
    assert.deepEqual([...acked].filter((id) => audited.get(id) !== 1), [], 'each acknowledged write has exactly one statement event');
    const perReplica = (name: string) => rows.filter((row) => row.replica === `${name}-${RUN_ID}` && String(row.line_text).includes('INSERT INTO rolled')).length;
    process.stderr.write(`# rolled: ${acked.length} writes acknowledged (${perReplica('meshgate-a')} through A, ${perReplica('meshgate-b')} through B), ${failed.length} refused with MG_SHUTTING_DOWN and never run\n`);
    const verdict = await verifyPostgresAudit({ connectionString: PG_URL, table: TABLE });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.findings));
  });
});

function connectVia(port: number, h: Harness): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port, user: 'app', database: h.database, ssl: h.ssl('app') }).then((conn) => {
    conn.on('error', () => undefined);
    return conn;
  });
}

async function rowsOf(h: Harness): Promise<Set<number>> {
  const conn = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, password: MARIADB.password, database: h.database });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT id FROM rolled');
    return new Set(rows.map((row) => Number(row['id'])));
  } finally {
    await conn.end();
  }
}

function adminPost(port: number, path: string, as: keyof typeof WORKLOADS, body: object, h: Harness): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = JSON.stringify(body);
  const pems = h.ssl(as);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path, ca: pems.ca, cert: pems.cert, key: pems.key, agent: false, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`never: ${what}`);
}
