/**
 * Long statements through meshgate against the real MariaDB (issue 12, point 7). A text past
 * the codec's 64 KiB is recorded with a prefix of audit.statementBytes, marked truncated, with
 * the whole text's length and SHA-256 and the verb of every statement in it, so
 * `SELECT 1 /*70 KB*\/; DELETE …` is on record as the DELETE it also is; and every statement
 * of it reaches MariaDB under meshgate's tag, the DELETE included.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

const PREFIX_BYTES = 32 * 1024;
const COMMENT = `/*${'x'.repeat(70 * 1024)}*/`;
/** The statement reads its own processlist entry: what MariaDB shows for it while it runs. */
const OWN_INFO = '(SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID())';

describe('long statements through meshgate', { skip: missing }, () => {
  let h: Harness;
  let conn: mysql.Connection | undefined;
  const tagHead = () => {
    const identity = encodeURIComponent(STANDARD_WORKLOADS.orders).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    return `/*meshgate_identity='${identity}',meshgate_role='${h.roles.rw}'`;
  };
  const statementEvents = async () => (await h.readAudit()).filter((e) => e['type'] === 'statement');

  before(async () => {
    h = await startHarness({
      name: 'longstmt',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, qty INT)', 'INSERT INTO {db}.items VALUES (1, 10), (2, 20), (3, 30)'],
      config: (config) => {
        config.audit = { ...config.audit, statementBytes: PREFIX_BYTES };
      },
    });
    conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders'), multipleStatements: true });
  });
  after(async () => cleanup(() => conn?.end(), () => h?.stop()));

  it('records SELECT 1 /*70 KB*/; DELETE … as both, truncated, with its length and SHA-256, and the DELETE runs under the tag', async () => {
    const sql = `SELECT 1 AS one ${COMMENT}; DELETE FROM items WHERE id = 2 AND (@info := ${OWN_INFO}) IS NOT NULL`;
    const [results] = (await conn!.query(sql)) as unknown as [[unknown, { affectedRows: number }]];
    assert.equal(results[1].affectedRows, 1, 'the DELETE ran');
    const [[{ info }]] = (await conn!.query('SELECT @info AS info')) as unknown as [[{ info: string }]];
    assert.ok(info.startsWith(`${tagHead()},traceparent='00-`), `the DELETE ran as ${JSON.stringify(info.slice(0, 200))}`);
    assert.ok(info.endsWith(`*/ DELETE FROM items WHERE id = 2 AND (@info := ${OWN_INFO}) IS NOT NULL`), info.slice(-200));

    const event = (await statementEvents()).find((e) => typeof e['statement'] === 'string' && (e['statement'] as string).startsWith('SELECT 1 AS one /*xxx'));
    assert.ok(event !== undefined, 'the statement has an event');
    assert.deepEqual(event['verbs'], ['SELECT', 'DELETE']);
    assert.equal(event['verb'], 'SELECT');
    assert.equal(event['truncated'], true);
    assert.equal(event['statementBytes'], Buffer.byteLength(sql));
    assert.equal(event['statementSha256'], createHash('sha256').update(sql).digest('hex'));
    assert.equal(event['statement'], sql.slice(0, PREFIX_BYTES));
    assert.equal(event['rowsAffected'], 1);
  });

  it('tags a single statement longer than 64 KiB', async () => {
    const sql = `SELECT INFO AS info FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID() ${COMMENT}`;
    const [[{ info }]] = (await conn!.query(sql)) as unknown as [[{ info: string }]];
    assert.ok(info.startsWith(tagHead()), info.slice(0, 200));
    // The processlist shows 64 KiB of it at most.
    assert.ok(info.includes(`*/ ${sql.slice(0, 1000)}`), "the client's text follows the tag unchanged");
  });

  it('tags each statement of a short multi-statement text, and records its verbs whole', async () => {
    const sql = `UPDATE items SET qty = qty + 1 WHERE id = 1;\n  SELECT ${OWN_INFO} AS info_of_second`;
    const [results] = (await conn!.query(sql)) as unknown as [[unknown, { info_of_second: string }[]]];
    const info = results[1][0]!.info_of_second;
    assert.ok(info.startsWith(`${tagHead()},traceparent='00-`), info);
    assert.ok(info.endsWith(`*/ SELECT ${OWN_INFO} AS info_of_second`), info);
    const event = (await statementEvents()).find((e) => e['statement'] === sql);
    assert.ok(event !== undefined);
    assert.deepEqual(event['verbs'], ['UPDATE', 'SELECT']);
    assert.equal(event['truncated'], false);
    assert.equal(event['statementBytes'], Buffer.byteLength(sql));
    assert.equal(event['statementSha256'], createHash('sha256').update(sql).digest('hex'));
  });

  it('keeps no hash of a text that may carry a credential', async () => {
    const sql = "SELECT AES_ENCRYPT('card', 'k3y-guessable') AS sealed";
    await conn!.query(sql);
    const event = (await statementEvents()).find((e) => typeof e['statement'] === 'string' && (e['statement'] as string).startsWith('SELECT AES_ENCRYPT'));
    assert.ok(event !== undefined);
    assert.equal(event['statementSha256'], null);
    assert.doesNotMatch(String(event['statement']), /k3y/);
    assert.equal(event['statementBytes'], Buffer.byteLength(sql));
  });
});
