/**
 * What must hold under attack or mistake: no identity, no session; deny rules win; a
 * read-only identity cannot write by any route; nothing a client sends widens its rights;
 * a malformed client hurts only itself; no secret reaches the audit trail.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { initCa, issueSvid } from '../../../src/identity/ca.ts';
import { DEFAULT_POLICY, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

type MysqlError = { errno?: number; sqlState?: string; message: string; code?: string };

describe('meshgate security (real MariaDB, mysql2)', { skip: missing }, () => {
  let h: Harness;
  const connect = (ssl: mysql.ConnectionOptions['ssl'] | undefined, extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl, ...extra });
  const refused = async (ssl: mysql.ConnectionOptions['ssl'] | undefined, code: string, extra: mysql.ConnectionOptions = {}) => {
    await assert.rejects(connect(ssl, extra), (e: MysqlError) => {
      assert.match(e.message, new RegExp(`\\[${code}\\]`), e.message);
      return true;
    });
  };

  let elsewhereCa: string;

  before(async () => {
    // A second CA whose root meshgate trusts, for another trust domain: only the
    // trust-domain check can refuse its certificates.
    elsewhereCa = await mkdtemp(join(tmpdir(), 'meshgate-elsewhere-'));
    await initCa({ dir: elsewhereCa, trustDomain: 'elsewhere.example' });
    h = await startHarness({
      name: 'sec',
      workloads: { ...STANDARD_WORKLOADS, importer: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/importer` },
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50))', "INSERT INTO {db}.items VALUES (1, 'one')"],
      // The importer may LOAD DATA LOCAL INFILE; nobody else may.
      policy: `${DEFAULT_POLICY}
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: importer }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/importer"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}", allowLocalInfile: true } }]
`,
      config: (c) => {
        c.trust.bundles.push(join(elsewhereCa, 'bundle.pem'));
      },
    });
  });
  after(async () => {
    await cleanup(
      () => h?.stop(),
      () => rm(elsewhereCa, { recursive: true, force: true }),
    );
  });

  it('refuses plaintext clients with MG_TLS_REQUIRED', async () => {
    await refused(undefined, 'MG_TLS_REQUIRED');
  });

  it('refuses TLS clients without a certificate', async () => {
    await refused({ ca: h.ssl('orders').ca }, 'MG_CLIENT_CERT_MISSING');
  });

  it('refuses certificates from another CA, expired ones and other trust domains', async () => {
    const otherCa = join(h.dir, 'other-ca');
    await initCa({ dir: otherCa, trustDomain: TRUST_DOMAIN });
    const foreign = await issueSvid({ caDir: otherCa, spiffeId: STANDARD_WORKLOADS.orders, outDir: otherCa, name: 'foreign' });
    const ssl = async (cert: string, key: string) => ({ cert: await readFile(cert), key: await readFile(key), ca: h.ssl('orders').ca });
    await refused(await ssl(foreign.certPath, foreign.keyPath), 'MG_CLIENT_CERT_UNTRUSTED');

    const old = await issueSvid({
      caDir: h.caDir,
      spiffeId: STANDARD_WORKLOADS.orders,
      outDir: h.dir,
      name: 'expired',
      // Inside the CA's own validity (it back-dates itself by a minute), over 30 s ago.
      ttlSeconds: 10,
      now: new Date(Date.now() - 50_000),
    });
    await refused(await ssl(old.certPath, old.keyPath), 'MG_CLIENT_CERT_EXPIRED');

    const elsewhere = await issueSvid({ caDir: elsewhereCa, spiffeId: 'spiffe://elsewhere.example/ns/shop/sa/orders', outDir: elsewhereCa, name: 'x' });
    await refused(await ssl(elsewhere.certPath, elsewhere.keyPath), 'MG_TRUST_DOMAIN_UNTRUSTED');
  });

  it('denies a staging workload by the explicit DENY rule and names the rule', async () => {
    await assert.rejects(connect(h.ssl('staging')), (e: MysqlError) => {
      assert.match(e.message, /\[MG_POLICY_DENIED\]/);
      assert.match(e.message, /deny-staging/);
      assert.equal(e.errno, 1044);
      return true;
    });
  });

  it('denies an identity no rule allows', async () => {
    await assert.rejects(connect(h.ssl('stranger')), (e: MysqlError) => /\[MG_POLICY_DENIED\].*no ALLOW rule/.test(e.message));
  });

  it('a read-only identity cannot write: plain, multi-statement, SET ROLE, prepared', async () => {
    const conn = await connect(h.ssl('analytics'), { multipleStatements: true });
    // MariaDB's own refusals: table (1142), database (1044), privilege (1227), role (1959), grant (1698).
    const denied = (e: MysqlError) => {
      assert.ok([1142, 1044, 1227, 1959, 1698].includes(e.errno ?? 0), `${e.errno}: ${e.message}`);
      return true;
    };
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT name FROM items');
      assert.equal(rows.length, 1);
      await assert.rejects(conn.query("INSERT INTO items VALUES (2, 'two')"), denied);
      await assert.rejects(conn.query("SELECT 1; DELETE FROM items; SELECT 2"), denied);
      await assert.rejects(conn.query(`SET ROLE ${h.roles.rw}`), denied);
      await assert.rejects(conn.execute('UPDATE items SET name = ? WHERE id = 1', ['x']), denied);
      await assert.rejects(conn.query("PREPARE s FROM 'DELETE FROM items'; EXECUTE s"), denied);
      await assert.rejects(conn.query(`GRANT ${h.roles.rw} TO CURRENT_USER`), denied);
      const [after] = await conn.query<mysql.RowDataPacket[]>('SELECT name FROM items');
      assert.deepEqual(after.map((r) => r.name), ['one']);
    } finally {
      await conn.end();
    }
  });

  it('COM_CHANGE_USER cannot switch identity or role: it resets the session, which keeps its own', async () => {
    const conn = await connect(h.ssl('analytics'));
    try {
      const [[before]] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r');
      await conn.query('SET @left_behind = 1');
      await conn.changeUser({ user: 'root', password: '' });
      const [[after]] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r, @left_behind AS v');
      assert.equal(after!.u, before!.u, 'still the account meshgate logged in as, not root');
      assert.equal(after!.r, h.roles.ro);
      assert.equal(after!.v, null, 'the reset cleared what the session had set');
      await assert.rejects(conn.query("UPDATE items SET name = 'x'"), /denied/);
    } finally {
      conn.destroy();
    }
    const changes = (await h.readAudit()).filter((e) => e['type'] === 'statement' && e['command'] === 'change_user');
    assert.ok(changes.some((e) => e['decision'] === 'allow' && e['error'] === null), 'the change is audited');
  });

  it('LOAD DATA LOCAL INFILE is refused by default and passes where policy allows it', async () => {
    const csv = join(h.dir, 'items.csv');
    await writeFile(csv, '10,ten\n11,eleven\n');
    const load = `LOAD DATA LOCAL INFILE '${csv}' INTO TABLE items FIELDS TERMINATED BY ','`;
    const options = { infileStreamFactory: () => createReadStream(csv) } as mysql.ConnectionOptions;
    const orders = await connect(h.ssl('orders'), options);
    try {
      await assert.rejects(orders.query(load), (e: MysqlError) => e.errno === 4166 || e.errno === 1148 || /LOCAL|not allowed/i.test(e.message));
    } finally {
      await orders.end();
    }
    const importer = await connect(h.ssl('importer'), options);
    try {
      const [res] = await importer.query<mysql.ResultSetHeader>(load);
      assert.equal(res.affectedRows, 2);
    } finally {
      await importer.end();
    }
  });

  it('a malformed or oversized packet closes only that session', async () => {
    const healthy = await connect(h.ssl('orders'));
    try {
      for (const garbage of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0xff, 0xff, 0xff, 0x01, 0x00]), Buffer.alloc(200, 0)]) {
        const reply = await rawExchange(h.port, garbage);
        assert.ok(reply.closed, 'meshgate closes a session that sends garbage');
      }
      const [rows] = await healthy.query<mysql.RowDataPacket[]>('SELECT 1 AS ok');
      assert.equal(rows[0]!.ok, 1);
    } finally {
      await healthy.end();
    }
  });

  it('keeps secrets out of the audit trail', async () => {
    const audit = await readFile(h.auditFile, 'utf8');
    for (const account of h.provisioned.accounts.values()) {
      assert.ok(!audit.includes(account.password), 'an upstream password appears in the audit file');
    }
    assert.ok(!audit.includes('PRIVATE KEY'));
    const events = await h.readAudit();
    assert.ok(events.some((e) => e.type === 'connection' && e.decision === 'deny' && (e.error as { code: string }).code === 'MG_TLS_REQUIRED'));
    assert.ok(events.some((e) => e.type === 'connection' && e.decision === 'deny' && e.rule === 'deny-staging/0'));
  });
});

/** Connects, reads the greeting, sends `bytes`, and reports what meshgate did. */
function rawExchange(port: number, bytes: Buffer): Promise<{ closed: boolean; reply: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let greeted = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ closed: false, reply: Buffer.concat(chunks) });
    }, 3000);
    socket.on('data', (chunk) => {
      if (!greeted) {
        greeted = true;
        socket.write(bytes);
        return;
      }
      chunks.push(chunk);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, reply: Buffer.concat(chunks) });
    });
    socket.on('error', reject);
  });
}
