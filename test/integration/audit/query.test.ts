/**
 * `meshgate audit query` over a log a real meshgate wrote: two workloads run statements
 * through it against the real MariaDB with mysql2 (a refused login, a statement MariaDB
 * refuses, a traced one), the log rotates into several files, and the CLI, run as a
 * subprocess, finds events by identity, trace, namespace, database, verb and time, and
 * digests them by fingerprint.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { newTraceId } from '../../../src/audit/index.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { exitOf, spawnCli } from '../../helpers/cli.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

/** `meshgate audit query …` in a child process, as a user runs it. */
async function query(argv: readonly string[]): Promise<{ code: number | null; out: string[]; stderr: string }> {
  const child = spawnCli(['audit', 'query', ...argv]);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const { code, stderr } = await exitOf(child);
  return { code, out: Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== ''), stderr };
}

async function queryJson(argv: readonly string[]): Promise<Record<string, unknown>[]> {
  const { code, out, stderr } = await query([...argv, '--json']);
  assert.equal(code, 0, stderr);
  return out.map((line) => JSON.parse(line) as Record<string, unknown>);
}

const INSERTS = 30;
const LOOKUPS = 20;
const COUNTS = 10;

describe('meshgate audit query over a log meshgate wrote serving MariaDB', { skip: missing }, () => {
  let h: Harness | undefined;
  let between = '';
  const traceId = newTraceId();
  const principal = (workload: keyof typeof STANDARD_WORKLOADS) => STANDARD_WORKLOADS[workload].slice('spiffe://'.length);

  before(async () => {
    h = await startHarness({
      name: 'auditquery',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50), qty INT)'],
      config: (config) => {
        config.audit = { ...config.audit, rotate: { maxBytes: 4096 } };
      },
    });
    const connect = (workload: string) => mysql.createConnection({ host: '127.0.0.1', port: h!.port, user: 'ignored', database: h!.database, ssl: h!.ssl(workload) });
    const orders = await connect('orders');
    try {
      // mysql2 puts the values into the text: each statement has its own literals.
      for (let i = 0; i < INSERTS; i++) {
        await orders.query('INSERT INTO items (id, name, qty) VALUES (?, ?, ?), (?, ?, ?)', [2 * i + 1, `item '${i}'`, i, 2 * i + 2, `other-${i}`, i + 100]);
      }
      await sleep(20);
      between = new Date().toISOString();
      await sleep(20);
      for (let i = 0; i < LOOKUPS; i++) {
        const ids = Array.from({ length: 1 + (i % 4) }, (_, k) => 1 + k + i);
        await orders.query(`SELECT name, qty FROM items WHERE id IN (${ids.join(', ')})`);
      }
      await orders.query(`SELECT qty FROM items WHERE id = 7 /*traceparent='00-${traceId}-00f067aa0ba902b7-01'*/`);
      await orders.query('UPDATE items SET qty = qty + 1 WHERE id = 3');
    } finally {
      await orders.end();
    }
    const analytics = await connect('analytics');
    try {
      for (let i = 0; i < COUNTS; i++) await analytics.query(`select count(*) from items where qty > ${i * 7}`);
      // Read-only role: MariaDB refuses it, meshgate records the failure.
      await assert.rejects(analytics.query('INSERT INTO items VALUES (999, "x", 1)'), /INSERT command denied/);
    } finally {
      await analytics.end();
    }
    await assert.rejects(connect('staging'), /MG_POLICY_DENIED/);
    // Stop meshgate only: its audit is flushed and closed, the files stay until after().
    await h.meshgate.close();
  });
  after(async () => {
    await cleanup(() => h?.stop());
  });

  it('the log rotated into several files, and every file is read in order', async () => {
    const files = (await readdir(dirname(h!.auditFile))).filter((f) => /^audit\.(\d{6}\.)?jsonl$/.test(f));
    assert.ok(files.length >= 3, `rotated: ${files.join(', ')}`);
    const events = await queryJson([dirname(h!.auditFile)]);
    const seqs = events.map((e) => e['seq'] as number);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'oldest first');
    assert.equal(seqs[0], 1, 'from the first line of the oldest rotated file');
    assert.ok(!events.some((e) => e['type'] === 'audit_file'), 'file headers are not events');
  });

  it('--identity and --verb find every INSERT the orders workload ran, across the files', async () => {
    const inserts = await queryJson([h!.auditFile, '--identity', '*/sa/orders', '--verb', 'insert']);
    assert.equal(inserts.length, INSERTS);
    for (const event of inserts) {
      assert.equal((event['identity'] as { principal: string }).principal, principal('orders'));
      assert.equal(event['rowsAffected'], 2);
      assert.match(String(event['statement']), /^INSERT INTO items \(id, name, qty\) VALUES \(\d+, 'item \\'\d+\\'', \d+\), /);
    }
  });

  it('--trace finds the one statement the client traced', async () => {
    const traced = await queryJson([h!.auditFile, '--trace', traceId]);
    assert.equal(traced.length, 1);
    assert.equal(traced[0]!['traceId'], traceId);
    assert.match(String(traced[0]!['statement']), /^SELECT qty FROM items WHERE id = 7 /);
    assert.deepEqual((await queryJson([h!.auditFile, '--trace', traceId.slice(0, 10)])).map((e) => e['seq']), [traced[0]!['seq']]);
  });

  it('--decision, --namespace and --database find the refused login and the logins to the database', async () => {
    const refused = await queryJson([h!.auditFile, '--decision', 'deny', '--namespace', 'staging']);
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!['type'], 'connection');
    assert.equal((refused[0]!['identity'] as { principal: string }).principal, principal('staging'));
    const logins = await queryJson([h!.auditFile, '--type', 'connection', '--database', h!.database, '--decision', 'allow']);
    assert.deepEqual(logins.map((e) => (e['identity'] as { principal: string }).principal), [principal('orders'), principal('analytics')]);
    const failed = await queryJson([h!.auditFile, '--outcome', 'failed', '--identity', principal('analytics')]);
    assert.deepEqual(failed.map((e) => e['verb']), ['INSERT']);
  });

  it('--until and --since split the log at a moment between two batches', async () => {
    const before = await queryJson([h!.auditFile, '--type', 'statement', '--until', between]);
    assert.equal(before.length, INSERTS);
    assert.ok(before.every((e) => e['verb'] === 'INSERT'));
    const afterwards = await queryJson([h!.auditFile, '--type', 'statement', '--since', between]);
    assert.equal(afterwards.length, LOOKUPS + 2 + COUNTS + 1);
    assert.ok(!afterwards.some((e) => String(e['statement']).startsWith('INSERT INTO items (id')));
    // Relative: everything written in the last hour is everything.
    assert.equal((await queryJson([h!.auditFile, '--type', 'statement', '--since', '1h'])).length, INSERTS + LOOKUPS + 2 + COUNTS + 1);
  });

  it('--digest groups the statements by fingerprint: counts, time, rows, identities', async () => {
    const digests = await queryJson([h!.auditFile, '--digest']);
    const byPrint = new Map(digests.map((d) => [d['fingerprint'] as string, d]));
    const insert = byPrint.get('insert into items(id, name, qty) values (?+)');
    assert.ok(insert, [...byPrint.keys()].join('\n'));
    assert.equal(insert['count'], INSERTS);
    assert.equal(insert['rowsAffected'], 2 * INSERTS);
    assert.deepEqual(insert['identities'], [{ identity: principal('orders'), count: INSERTS }]);
    assert.ok((insert['totalUs'] as number) > 0 && (insert['p99Us'] as number) > 0 && (insert['p99Us'] as number) <= (insert['maxUs'] as number));
    const lookup = byPrint.get('select name, qty from items where id in (?+)');
    assert.equal(lookup?.['count'], LOOKUPS, 'IN lists of every length share a fingerprint');
    const counts = byPrint.get('select count(*) from items where qty > ?');
    assert.equal(counts?.['count'], COUNTS);
    assert.deepEqual(counts?.['identities'], [{ identity: principal('analytics'), count: COUNTS }]);
    assert.equal(byPrint.get('insert into items values (?+)')?.['failed'], 1);
    assert.equal(byPrint.get('select qty from items where id = ?')?.['count'], 1, 'the traceparent comment is not part of it');
    const totals = digests.map((d) => d['totalUs'] as number);
    assert.deepEqual(totals, [...totals].sort((a, b) => b - a), 'by total time, longest first');
  });

  it('prints tables for people', async () => {
    const events = await query([h!.auditFile, '--type', 'statement', '--limit', '3']);
    assert.equal(events.code, 0, events.stderr);
    assert.equal(events.out.length, 4);
    assert.match(events.out[0]!, /^TIME +TYPE +IDENTITY +DECISION +RULE +OUTCOME +MS +ROWS +TRACE +TARGET +TEXT$/);
    assert.match(events.out[1]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  statement  ${principal('orders').replaceAll('.', '\\.')} +allow +writers/orders +completed +[\\d.]+ +0/2  [0-9a-f]{12}  ${h!.database} +INSERT INTO items`));
    const digest = await query([h!.auditFile, '--digest', '--limit', '2']);
    assert.equal(digest.code, 0, digest.stderr);
    assert.equal(digest.out.length, 3);
    assert.match(digest.out[0]!, /^ID +COUNT +FAILED +TOTAL_MS +AVG_MS +P99_MS +ROWS +AFFECTED +IDENTITIES +FINGERPRINT$/);
  });

  it('a mistake is a one-line error with its MG_ code and exit status', async () => {
    const gone = await query([join(dirname(h!.auditFile), 'nothing-here.jsonl')]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^meshgate audit query: \[MG_AUDIT_NOT_FOUND\] no audit log at .*nothing-here\.jsonl/);
    const badFilter = await query([h!.auditFile, '--outcome', 'ok']);
    assert.equal(badFilter.code, 2);
    assert.match(badFilter.stderr, /^meshgate audit query: \[MG_USAGE\] --outcome "ok" is not one of completed, failed, unknown, refused/);
  });
});
