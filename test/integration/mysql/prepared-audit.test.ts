/**
 * Prepared statements audited whole (issue 13, point 3), through meshgate against the real
 * MariaDB with real drivers: the text at prepare with its parameter count; at each execute
 * the statement id and its parameters as the deciding rule's auditParameters says (values,
 * types, none), long values cut and marked; long data counted (PHP mysqli's
 * send_long_data); MariaDB's own connector pipelining an execute with statement id -1
 * behind its prepare.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import mariadb from 'mariadb';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');
const php = spawnSync('php', ['-r', 'exit(extension_loaded("mysqli") ? 0 : 3);'], { encoding: 'utf8' });
const phpMissing =
  php.error !== undefined ? "the 'php' command is not on PATH (Debian packages php-cli and php-mysql)" : php.status !== 0 ? 'PHP has no mysqli extension (Debian package php-mysql)' : false;
const LONG_DATA_SCRIPT = fileURLToPath(new URL('../../fixtures/clients/mysqli-long-data.php', import.meta.url));

/** orders: values; analytics: the default (types); stranger: none. */
const POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: prepared }
spec:
  action: ALLOW
  rules:
    - id: values
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}", auditParameters: values } }]
    - id: types
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/analytics"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}" } }]
    - id: none
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/stranger"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}", auditParameters: none } }]
`;
const PARAMETER_BYTES = 8;

type Event = Record<string, unknown> & {
  type: string;
  command: string;
  statement: string | null;
  traceId: string;
  rowsReturned: number;
  prepared?: { statementId: number | null; parameterCount?: number; parameters?: Record<string, unknown>[]; longData?: { chunks: number; bytes: number }; fetch?: number };
};

describe('prepared statements audited whole', { skip: missing }, () => {
  let h: Harness;
  const eventsMarked = async (mark: string) =>
    (await h.readAudit()).filter((e): e is Event => e.type === 'statement' && typeof e['statement'] === 'string' && (e['statement'] as string).includes(mark));
  const connect = (workload: string) => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload) });

  before(async () => {
    h = await startHarness({
      name: 'prepaudit',
      workloads: STANDARD_WORKLOADS,
      policy: POLICY,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2))', "INSERT INTO {db}.items VALUES (1, 'widget', 2.50), (2, 'gadget', 10.00)", 'CREATE TABLE {db}.docs (id INT PRIMARY KEY, body LONGBLOB)'],
      config: (config) => {
        config.audit = { ...config.audit, parameterBytes: PARAMETER_BYTES };
      },
    });
  });
  after(async () => cleanup(() => h?.stop()));

  it('values: the prepare with its parameter count, each execute with its statement id and values, long ones cut', async () => {
    const conn = await connect('orders');
    try {
      const sql = 'SELECT id FROM items WHERE id = ? AND name <> ? /* values */';
      await conn.execute(sql, [1, 'a much longer name than eight bytes']);
      await conn.execute(sql, [2, null]);
    } finally {
      await conn.end();
    }
    const events = await eventsMarked('/* values */');
    const prepare = events.find((e) => e.command === 'prepare');
    assert.ok(prepare?.prepared !== undefined, 'the prepare is audited with its statement id');
    assert.equal(prepare.prepared.parameterCount, 2);
    const executes = events.filter((e) => e.command === 'execute');
    assert.equal(executes.length, 2);
    for (const execute of executes) assert.equal(execute.prepared?.statementId, prepare.prepared.statementId);
    // mysql2 binds every JavaScript number as a DOUBLE.
    assert.deepEqual(executes[0]!.prepared?.parameters, [
      { type: 'DOUBLE', value: 1 },
      { type: 'VAR_STRING', value: 'a much l', truncated: true, bytes: 35 },
    ]);
    assert.equal(executes[0]!.rowsReturned, 1);
    assert.deepEqual(executes[1]!.prepared?.parameters?.map((p) => p['value']), [2, null]);
  });

  it('types (the default): types and lengths only, and no value reaches the audit file', async () => {
    const conn = await connect('analytics');
    try {
      await conn.execute('SELECT id FROM items WHERE name = ? /* types */', ['s3cret-value']);
    } finally {
      await conn.end();
    }
    const execute = (await eventsMarked('/* types */')).find((e) => e.command === 'execute');
    assert.deepEqual(execute?.prepared?.parameters, [{ type: 'VAR_STRING', bytes: 12 }]);
    assert.doesNotMatch(JSON.stringify(await h.readAudit()), /s3cret-value/);
  });

  it('none: the statement id, no parameters', async () => {
    const conn = await connect('stranger');
    try {
      await conn.execute('SELECT id FROM items WHERE id = ? /* none */', [1]);
    } finally {
      await conn.end();
    }
    const execute = (await eventsMarked('/* none */')).find((e) => e.command === 'execute');
    assert.equal(typeof execute?.prepared?.statementId, 'number');
    assert.equal(execute?.prepared?.parameters, undefined);
  });

  it("MariaDB's connector: an execute pipelined behind its prepare (statement id -1) has its parameters read", async () => {
    const conn = await mariadb.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders'), connectTimeout: 5000 });
    try {
      const rows = (await conn.execute('SELECT id FROM items WHERE price > ? /* pipelined */', [5])) as unknown[];
      assert.equal(rows.length, 1);
    } finally {
      await conn.end();
    }
    const events = await eventsMarked('/* pipelined */');
    const execute = events.find((e) => e.command === 'execute');
    assert.ok(execute?.prepared !== undefined, JSON.stringify(events));
    assert.equal(execute.prepared.statementId, -1, 'the connector names the statement it just prepared by -1');
    assert.equal(execute.prepared.parameters?.length, 1);
    assert.equal(execute.prepared.parameters?.[0]?.['value'], 5);
  });

  it('long data: counted at the execute it was sent for, and the value is not in the event', { skip: phpMissing }, async () => {
    const config = { host: '127.0.0.1', port: h.port, user: 'php', password: '', database: h.database, ssl: h.clients['orders'] };
    const seen = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const env = { ...process.env, MYSQLI_LONG_DATA_CONFIG: JSON.stringify(config) };
      execFile('php', [LONG_DATA_SCRIPT], { env, timeout: 30_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) =>
        error !== null ? reject(new Error(`php failed (${error.code}): ${stderr}`)) : resolve(JSON.parse(stdout) as Record<string, unknown>),
      );
    });
    assert.deepEqual(seen['rows'], [{ id: '1', n: '1500' }, { id: '2', n: '6' }]);
    const executes = (await eventsMarked('/* mysqli long data */')).filter((e) => e.command === 'execute');
    assert.equal(executes.length, 2);
    assert.deepEqual(executes[0]!.prepared?.longData, { chunks: 2, bytes: 1500 });
    // mysqlnd binds 'i' as LONGLONG and 'b' as LONG_BLOB.
    assert.deepEqual(executes[0]!.prepared?.parameters, [{ type: 'LONGLONG', value: 1 }, { type: 'LONG_BLOB', longData: true }]);
    assert.equal(executes[1]!.prepared?.longData, undefined, 'long data belongs to the one execute it was sent for');
    assert.deepEqual(executes[1]!.prepared?.parameters?.[1], { type: 'VAR_STRING', value: 'inline', bytes: 6 });
  });
});
