/**
 * `meshgate analyze` end to end: a real meshgate in front of the real MariaDB, mysql2
 * clients under three identities writing the audit, then the analysis reading that audit
 * and the roles' grants from MariaDB through the admin account (SHOW GRANTS, and the
 * tables of the databases they reach). Names are this run's (`mgt_analyze_<run>`), dropped
 * after, even when setup fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { readMariadbGrants, roleReadsOnly, roleTables, roleWrites } from '../../../src/analyze/index.ts';
import { runCli } from '../../../src/cli/main.ts';
import { connectAdmin, ident } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { captureIO } from '../../helpers/cli.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, unique, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const ADMIN_URL = `mysql://${encodeURIComponent(MARIADB.user)}${MARIADB.password === '' ? '' : `:${encodeURIComponent(MARIADB.password)}`}@${MARIADB.host}:${MARIADB.port}/`;
const principal = (spiffeId: string) => spiffeId.slice('spiffe://'.length);

describe('meshgate analyze against real MariaDB grants and a real audit', { skip: missing }, () => {
  let h: Harness;
  let report: Record<string, any>;
  let table: string;

  before(async () => {
    h = await startHarness({
      name: 'analyze',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.orders (id INT PRIMARY KEY, total INT)', 'CREATE TABLE {db}.customers (id INT PRIMARY KEY)', 'CREATE TABLE {db}.secrets (id INT PRIMARY KEY)'],
    });
    const connect = (workload: string) => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload) });
    // orders holds the writing role and only reads; analytics reads; staging and a stranger are refused.
    const orders = await connect('orders');
    try {
      await orders.query('SELECT * FROM orders WHERE id = 1');
      await orders.query('SELECT o.id FROM orders o JOIN customers c ON c.id = o.id');
    } finally {
      await orders.end();
    }
    const analytics = await connect('analytics');
    try {
      await analytics.query('SELECT count(*) FROM `orders`');
    } finally {
      await analytics.end();
    }
    for (let i = 0; i < 6; i++) await assert.rejects(connect('staging'));
    for (let i = 0; i < 2; i++) await assert.rejects(connect('stranger'));
    await h.readAudit(); // flushed

    const io = captureIO(h.dir);
    const code = await runCli(['analyze', '--policy', 'policy', '--audit', h.auditFile, '--mariadb', ADMIN_URL, '--json', '--suggest'], io);
    assert.equal(code, 0, io.stderr.join('\n'));
    report = JSON.parse(io.stdout[0]!);
    const tableIo = captureIO(h.dir);
    assert.equal(await runCli(['analyze', '--policy', 'policy', '--audit', h.auditFile, '--mariadb', ADMIN_URL], tableIo), 0);
    table = tableIo.stdout.join('\n');
  });
  after(() => cleanup(() => h?.stop()));

  it('reads the grants from MariaDB, not from role names', () => {
    assert.equal(report['grantsSource'], 'mariadb');
    assert.deepEqual(report['notes'].filter((n: string) => /not know/.test(n)), []);
  });

  it('the identity in the writing role that only read is named, with the read-only role to use', () => {
    assert.deepEqual(
      report['unusedWrites'].map((w: any) => [w.identity, w.rule, w.role, w.statements, w.readOnlyRole]),
      [[principal(STANDARD_WORKLOADS.orders), 'writers/orders', h.roles.rw, 2, h.roles.ro]],
    );
  });

  it('tables each role may touch that no statement named, from the grants and information_schema', () => {
    const byRole = Object.fromEntries(report['untouchedTables'].map((t: any) => [t.role, t]));
    assert.deepEqual(byRole[h.roles.rw], { role: h.roles.rw, touched: 2, reachable: 3, untouched: [`${h.database}.secrets`] });
    assert.deepEqual(byRole[h.roles.ro], { role: h.roles.ro, touched: 1, reachable: 3, untouched: [`${h.database}.customers`, `${h.database}.secrets`] });
  });

  it('as a table, the tables section lists what each role left untouched', () => {
    assert.match(table, /^Role grants: read from MariaDB$/m);
    assert.match(table, new RegExp(`^${h.roles.rw}\\s+2/3\\s+${h.database}\\.secrets$`, 'm'));
    assert.match(table, new RegExp(`^${h.roles.ro}\\s+1/3\\s+${h.database}\\.customers, ${h.database}\\.secrets$`, 'm'));
  });

  it('the repeatedly refused identity, with the rule that refused it; the twice-refused one stays under the bar', () => {
    const denied = report['repeatedDenials'].map((d: any) => [d.identity, d.count, d.causes[0].rule]);
    assert.deepEqual(denied, [[principal(STANDARD_WORKLOADS.staging), 6, 'deny-staging/0']]);
    assert.deepEqual(report['unusedRules'], [], 'every rule decided something');
  });

  it('takes the password from MYSQL_PWD when the URL has none, and never prints it', async () => {
    const io = { ...captureIO(h.dir), env: { MYSQL_PWD: 'not-the-password-mgt' } };
    const url = `mysql://${encodeURIComponent(MARIADB.user)}@${MARIADB.host}:${MARIADB.port}/`;
    assert.equal(await runCli(['analyze', '--policy', 'policy', '--audit', h.auditFile, '--mariadb', url], io), 1);
    const said = io.stderr.join('\n');
    assert.match(said, /MG_UPSTREAM_UNAVAILABLE.*Access denied/);
    assert.doesNotMatch(said + io.stdout.join('\n'), /not-the-password-mgt/);
  });

  it('--suggest proposes the read-only role for the rule', () => {
    assert.match(report['patch'], new RegExp(`^\\+.*role: "?${h.roles.ro}"?`, 'm'));
    assert.match(report['patch'], /^--- a\/policy\/policy\.yaml$/m);
  });
});

describe('reading role grants from MariaDB', { skip: missing }, () => {
  it('follows roles granted to roles, lists the tables database grants reach, and names roles that do not exist', async () => {
    const name = unique('analyze_grants');
    const db = `mgt_${name}`;
    const [base, writer] = [`${name}_base`, `${name}_writer`];
    const admin = await connectAdmin(MARIADB);
    try {
      await admin.query(`CREATE DATABASE ${ident(db)}`);
      await admin.query(`CREATE TABLE ${ident(db)}.a (id INT)`);
      await admin.query(`CREATE TABLE ${ident(db)}.b (id INT, note TEXT)`);
      await admin.query(`CREATE ROLE ${ident(base)}`);
      await admin.query(`CREATE ROLE ${ident(writer)}`);
      await admin.query(`GRANT SELECT ON ${ident(db)}.* TO ${ident(base)}`);
      await admin.query(`GRANT ${ident(base)} TO ${ident(writer)}`);
      await admin.query(`GRANT UPDATE (note) ON ${ident(db)}.b TO ${ident(writer)}`);

      const view = await readMariadbGrants(ADMIN_URL, [writer, `${name}_nobody`]);
      assert.deepEqual(view.missing, [`${name}_nobody`]);
      assert.deepEqual([...view.roles.keys()].sort(), [base, writer].sort());
      assert.deepEqual(view.roles.get(writer)!.roles, [base]);
      assert.equal(roleWrites(view, writer), true, 'a column UPDATE is a write');
      assert.equal(roleWrites(view, base), false);
      assert.equal(roleReadsOnly(view, base), true);
      assert.deepEqual([...roleTables(view, writer)!].sort(), [`${db}.a`, `${db}.b`]);
    } finally {
      await cleanup(
        () => admin.query(`DROP ROLE IF EXISTS ${ident(writer)}`),
        () => admin.query(`DROP ROLE IF EXISTS ${ident(base)}`),
        () => admin.query(`DROP DATABASE IF EXISTS ${ident(db)}`),
        () => admin.end(),
      );
    }
  });

  it('an unreachable server fails with a coded error that says what to check', async () => {
    await assert.rejects(readMariadbGrants('mysql://root@127.0.0.1:1/', ['r']), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_UNAVAILABLE');
      assert.match(error.message, /--mariadb/);
      return true;
    });
  });
});
