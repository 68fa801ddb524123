/**
 * `USE db` sent as SQL changes the database as COM_INIT_DB does: policy decides first, and
 * the audit names the database each later statement ran in. Clients that take MariaDB's
 * session tracking (mysql2 does) and clients that do not are both followed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: writers }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["${STANDARD_WORKLOADS.orders.slice('spiffe://'.length)}"] } }]
      to: [{ mariadb: { databases: ["{db}", "{db}_*"], role: "{rw}" } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: no-secrets }
spec:
  action: DENY
  rules:
    - id: secrets
      from: [{ source: { namespaces: ["shop"] } }]
      to: [{ mariadb: { databases: ["{db}_secret"] } }]
`;

describe('USE as SQL through meshgate', { skip: missing }, () => {
  let h: Harness;
  let root: mysql.Connection;
  let other: string;
  let secret: string;
  const connect = (extra: mysql.ConnectionOptions = {}) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders'), multipleStatements: true, ...extra });
  const databaseOf = async (statement: string) => {
    const events = (await h.readAudit()).filter((e) => e['type'] === 'statement' && e['statement'] === statement);
    assert.equal(events.length, 1, `one audit event for ${statement}`);
    return events[0]!['database'];
  };

  before(async () => {
    h = await startHarness({ name: 'usesql', workloads: STANDARD_WORKLOADS, policy: POLICY });
    other = `${h.database}_b`;
    secret = `${h.database}_secret`;
    root = await connectAdmin(MARIADB);
    for (const db of [other, secret]) {
      await root.query(`CREATE DATABASE \`${db}\``);
      // MariaDB would let the role in: only meshgate's policy stands between it and the secret.
      await root.query(`GRANT SELECT ON \`${db}\`.* TO \`${h.roles.rw}\``);
    }
  });
  after(async () => cleanup(() => root?.query(`DROP DATABASE IF EXISTS \`${other}\``), () => root?.query(`DROP DATABASE IF EXISTS \`${secret}\``), () => root?.end(), () => h?.stop()));

  const clients: Array<[string, mysql.ConnectionOptions]> = [
    ['with session tracking', {}],
    ['without session tracking', { flags: ['-SESSION_TRACK'] }],
  ];
  for (const [client, extra] of clients) {
    it(`refuses USE of a database policy denies, alone or among other statements (${client})`, async () => {
      const conn = await connect(extra);
      try {
        for (const sql of [`USE ${secret}`, `USE \`${secret}\``, `SELECT 1; USE ${secret}`, `/* hi */ use ${secret} ;`]) {
          await assert.rejects(conn.query(sql), (e: mysql.QueryError) => {
            assert.match(e.message, /\[MG_POLICY_DENIED\].*no-secrets/);
            assert.equal(e.errno, 1044);
            return true;
          }, sql);
        }
        const [[row]] = (await conn.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]];
        assert.equal(row.db, h.database, 'still in the database it started in');
      } finally {
        await conn.end();
      }
    });

    it(`audits later statements under the database USE switched to (${client})`, async () => {
      const conn = await connect(extra);
      const tag = client.replaceAll(' ', '_');
      try {
        await conn.query(`USE ${other}`);
        await conn.query(`SELECT '${tag}-after-use'`);
        assert.equal(await databaseOf(`SELECT '${tag}-after-use'`), other);
        await conn.query(`SELECT '${tag}-multi'; USE ${h.database}`);
        await conn.query(`SELECT '${tag}-back'`);
        assert.equal(await databaseOf(`SELECT '${tag}-back'`), h.database);
        // A USE MariaDB refuses changes nothing.
        await assert.rejects(conn.query(`USE ${h.database}_nonexistent`), /Unknown database|denied/);
        await conn.query(`SELECT '${tag}-after-failed-use'`);
        assert.equal(await databaseOf(`SELECT '${tag}-after-failed-use'`), h.database);
      } finally {
        await conn.end();
      }
    });
  }

  it('follows a database the session lost: DROP DATABASE of the current one (session tracking)', async () => {
    const scratch = `${h.database}_scratch`;
    await root.query(`CREATE DATABASE \`${scratch}\``);
    await root.query(`GRANT ALL ON \`${scratch}\`.* TO \`${h.roles.rw}\``);
    const conn = await connect({ database: scratch });
    try {
      await conn.query(`DROP DATABASE \`${scratch}\``);
      await conn.query("SELECT 'after-drop'");
      assert.equal(await databaseOf("SELECT 'after-drop'"), null);
    } finally {
      await cleanup(() => conn.end(), () => root.query(`DROP DATABASE IF EXISTS \`${scratch}\``));
    }
  });
});
