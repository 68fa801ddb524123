/**
 * The audit export into real PostgreSQL, fed by the real JSONL sink and seal (rotation on):
 * two replicas' logs in one table, across rotation mid-export and a restart of the export;
 * PostgreSQL going away (and an INSERT whose answer is lost) without an event lost or
 * duplicated; a rotated file removed before it was exported stops the export with its code.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startAuditExport, type AuditExport } from '../../../src/audit-pg/index.ts';
import { arrayLiteral } from '../../../src/audit-pg/table.ts';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { openAuditSeal } from '../../../src/audit/seal.ts';
import type { Logger } from '../../../src/log.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { PG_URL, serviceMissing } from '../../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';
import { IDENTITY, statementEvent, tempDir } from '../../unit/audit/helpers.ts';
import { readLines } from '../../unit/audit/seal-helpers.ts';

const missing = await serviceMissing('postgres');
const RUN = randomBytes(4).toString('hex');
const table = (name: string) => `mgt_auditpg_${RUN}_${name}`;

/** A replica's log: the real sink and seal, rotating every 8 KiB. */
async function replicaLog(dir: string, who: string) {
  const file = join(dir, who, 'audit.jsonl');
  await mkdir(join(dir, who), { recursive: true });
  const seal = await openAuditSeal({ file, rotate: { maxBytes: 8 * 1024 } });
  const sink = await openJsonlAuditSink(file, { batchDelayMs: 0, afterBatch: seal.afterBatch });
  let n = 0;
  const identity = { ...IDENTITY, spiffeId: `spiffe://example.org/ns/${who}/sa/app`, principal: `example.org/ns/${who}/sa/app`, namespace: who };
  return {
    file,
    dir: join(dir, who),
    async write(count: number, perBatch = 10) {
      for (let i = 0; i < count; i++) {
        n++;
        sink.record(statementEvent(n, { identity, statement: `SELECT ${n} /* ${who} ${'x'.repeat(150)} */`, verb: n % 3 === 0 ? 'DELETE' : 'SELECT', sessionId: `${who}-${n}` }));
        if ((i + 1) % perBatch === 0) await sink.flush();
      }
      await sink.flush();
    },
    /** Every chained line of the log (headers too), oldest first. */
    async lines(): Promise<string[]> {
      const names = (await readdir(join(dir, who))).filter((f) => /^audit\.(\d{6}\.)?jsonl$/.test(f)).sort((a, b) => (a === 'audit.jsonl' ? 1 : b === 'audit.jsonl' ? -1 : a.localeCompare(b)));
      const out: string[] = [];
      for (const name of names) out.push(...(await readLines(join(dir, who, name))));
      return out;
    },
    async close() {
      await sink.close();
      await seal.close();
    },
  };
}

function capturingLog(): Logger & { readonly lines: { level: string; message: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message, fields });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The table's rows of `replica` as (seq, line text), in seq order, with a check that seq has no gap or repeat. */
async function exported(name: string, replica: string): Promise<string[]> {
  const rows = await query<{ seq: string; line_text: string }>(`SELECT seq, line_text FROM ${name} WHERE replica = $1 ORDER BY seq`, [replica]);
  rows.forEach((row, i) => assert.equal(Number(row.seq), i + 1, `replica ${replica}: seq ${row.seq} at row ${i + 1}`));
  return rows.map((r) => r.line_text);
}

describe('the audit export to PostgreSQL', { skip: missing }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>> | undefined;
  const exports: AuditExport[] = [];
  const proxies: TcpProxy[] = [];
  const tables: string[] = [];
  const roles: string[] = [];
  const open = (o: Parameters<typeof startAuditExport>[0]) => {
    const e = startAuditExport(o);
    exports.push(e);
    tables.push(o.table!);
    return e;
  };

  before(async () => {
    tmp = await tempDir();
  });
  after(async () => {
    await cleanup(
      ...exports.map((e) => () => e.close(0)),
      ...proxies.map((p) => () => p.close()),
      async () => {
        for (const name of new Set(tables)) await query(`DROP TABLE IF EXISTS ${name}`);
      },
      async () => {
        for (const role of roles) await query(`DROP ROLE IF EXISTS ${role}`);
      },
      () => tmp?.cleanup(),
    );
  });

  it('puts two replicas into one table, across rotation mid-export and a restart of the export', async () => {
    const name = table('two');
    const a = await replicaLog(tmp!.dir, 'two-a');
    const b = await replicaLog(tmp!.dir, 'two-b');
    const log = capturingLog();
    const exportA = open({ connectionString: PG_URL, table: name, replica: 'replica-a', auditFile: a.file, batch: 37, intervalMs: 3_600_000, log });
    const exportB = open({ connectionString: PG_URL, table: name, replica: 'replica-b', auditFile: b.file, batch: 500, intervalMs: 3_600_000, log });
    await a.write(30);
    await b.write(20);
    await Promise.all([exportA.catchUp(), exportB.catchUp()]);
    assert.deepEqual(await exported(name, 'replica-a'), await a.lines());
    // Rotation while the export follows: several files come and go between catch-ups.
    await a.write(150);
    await exportA.catchUp();
    await a.write(40);
    await b.write(100);
    await Promise.all([exportA.catchUp(), exportB.catchUp()]);
    const filesA = (await readdir(a.dir)).filter((f) => /^audit\.\d{6}\.jsonl$/.test(f));
    assert.ok(filesA.length >= 3, `rotated: ${filesA.join(', ')}`);
    assert.deepEqual(await exported(name, 'replica-a'), await a.lines());
    assert.deepEqual(await exported(name, 'replica-b'), await b.lines());
    const files = await query<{ file: number }>(`SELECT DISTINCT file FROM ${name} WHERE replica = 'replica-a' ORDER BY file`);
    assert.ok(files.length >= 4, 'rows name the file each line is in');

    // A new export (meshgate restarted) goes on from the table's last seq, in the middle of a file.
    await exportA.close();
    await a.write(25);
    const again = open({ connectionString: PG_URL, table: name, replica: 'replica-a', auditFile: a.file, batch: 500, intervalMs: 3_600_000, log });
    await again.catchUp();
    assert.deepEqual(await exported(name, 'replica-a'), await a.lines());
    assert.equal(again.status().exportedSeq, (await a.lines()).length);
    assert.equal(log.lines.filter((l) => l.level !== 'info').length, 0, JSON.stringify(log.lines));
    await Promise.all([a.close(), b.close()]);
  });

  it('restarts at the offset the table names, and reads the file again from its start when that offset is off', async () => {
    const name = table('offset');
    const r = await replicaLog(tmp!.dir, 'offset');
    const log = capturingLog();
    const first = open({ connectionString: PG_URL, table: name, replica: 'replica-offset', auditFile: r.file, intervalMs: 3_600_000, log });
    await r.write(5);
    await first.catchUp();
    await first.close();
    const [last] = await query<{ end_offset: string; line: number }>(`SELECT end_offset, line FROM ${name} WHERE replica = 'replica-offset' ORDER BY seq DESC LIMIT 1`);
    assert.equal(Number(last!.end_offset), (await readLines(r.file)).slice(0, last!.line).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0), 'the offset just past the line');
    for (const shift of [-7, 3, 1_000_000]) {
      await query(`UPDATE ${name} SET end_offset = end_offset + $1 WHERE replica = 'replica-offset' AND seq = (SELECT max(seq) FROM ${name} WHERE replica = 'replica-offset')`, [shift]);
      await r.write(4);
      const again = open({ connectionString: PG_URL, table: name, replica: 'replica-offset', auditFile: r.file, intervalMs: 3_600_000, log });
      await again.catchUp();
      await again.close();
      assert.equal(again.status().stopped, null, `shifted by ${shift}`);
      assert.deepEqual(await exported(name, 'replica-offset'), await r.lines());
    }
    assert.deepEqual(log.lines.filter((l) => l.level !== 'info'), []);
    await r.close();
  });

  it('keeps up with a log written and rotated while it reads (timer and catch-ups racing the sink)', async () => {
    const name = table('race');
    const r = await replicaLog(tmp!.dir, 'race');
    const log = capturingLog();
    const exp = open({ connectionString: PG_URL, table: name, replica: 'replica-race', auditFile: r.file, batch: 7, intervalMs: 5, log });
    let writing = true;
    const writer = (async () => {
      for (let round = 0; round < 40; round++) await r.write(25, 3);
      writing = false;
    })();
    while (writing) await Promise.all([exp.catchUp(), new Promise((resolve) => setTimeout(resolve, 3))]);
    await writer;
    await exp.catchUp();
    const rotated = (await readdir(r.dir)).filter((f) => /^audit\.\d{6}\.jsonl$/.test(f));
    assert.ok(rotated.length >= 10, `rotated ${rotated.length} times while it read`);
    assert.deepEqual(await exported(name, 'replica-race'), await r.lines());
    assert.deepEqual(log.lines.filter((l) => l.level !== 'info'), []);
    await r.close();
  });

  it('loses and duplicates nothing while PostgreSQL is away, nor when an INSERT is done but its answer lost', async () => {
    const name = table('away');
    const url = new URL(PG_URL);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    proxies.push(proxy);
    url.port = String(proxy.port);
    const r = await replicaLog(tmp!.dir, 'away');
    const log = capturingLog();
    const exp = open({ connectionString: url.toString(), table: name, replica: 'replica-away', auditFile: r.file, batch: 50, intervalMs: 3_600_000, maxBackoffMs: 100, connectTimeoutMs: 500, log });
    await r.write(40);
    await exp.catchUp();
    assert.equal((await exported(name, 'replica-away')).length, (await r.lines()).length);

    await proxy.stop();
    await r.write(120);
    await exp.catchUp();
    await r.write(30);
    await exp.catchUp();
    assert.equal(exp.status().failing, true);
    const warned = log.lines.filter((l) => l.level === 'warn');
    assert.equal(warned.length, 1, 'says once that it is failing, however many attempts fail');
    assert.match(warned[0]!.message, /failing; it retries/);
    await proxy.start();
    await exp.catchUp();
    assert.equal(exp.status().failing, false);
    assert.equal(log.lines.filter((l) => l.level === 'info' && /recovered/.test(l.message)).length, 1);
    assert.deepEqual(await exported(name, 'replica-away'), await r.lines());

    // The next INSERT reaches PostgreSQL, its answer does not reach the export.
    const before = (await exported(name, 'replica-away')).length;
    const cut = proxy.cutAfter('INSERT INTO');
    await r.write(30);
    await exp.catchUp();
    await cut;
    assert.equal(exp.status().failing, true);
    const during = await exported(name, 'replica-away');
    assert.ok(during.length > before, 'PostgreSQL committed the batch whose answer was lost');
    assert.deepEqual(during, (await r.lines()).slice(0, during.length));
    await proxy.start();
    await exp.catchUp();
    assert.deepEqual(await exported(name, 'replica-away'), await r.lines(), 'the batch sent again is stored once');

    // PostgreSQL fails over to a standby that lacks the last rows the export sent.
    await proxy.stop();
    const total = (await r.lines()).length;
    await query(`DELETE FROM ${name} WHERE replica = 'replica-away' AND seq > $1`, [total - 25]);
    await r.write(10);
    await exp.catchUp();
    await proxy.start();
    await exp.catchUp();
    assert.deepEqual(await exported(name, 'replica-away'), await r.lines(), 'the rows the standby lacked are sent again');
    assert.ok(log.lines.some((l) => l.level === 'warn' && /holds other lines/.test(l.message) && l.fields['held'] === total - 25));
    await r.close();
  });

  it('leaves a partial last line (a crash mid-write) alone, and exports the recovered event the next start chains', async () => {
    const name = table('torn');
    const r = await replicaLog(tmp!.dir, 'torn');
    const log = capturingLog();
    const exp = open({ connectionString: PG_URL, table: name, replica: 'replica-torn', auditFile: r.file, batch: 500, intervalMs: 3_600_000, log });
    await r.write(5);
    await r.close();
    const whole = await r.lines();
    await appendFile(r.file, '{"type":"statement","time":"2025-01-01T00:00:00.000Z","sessi');
    await exp.catchUp();
    assert.deepEqual(await exported(name, 'replica-torn'), whole, 'nothing of the partial line');
    // meshgate starts again: the sink sets the partial line aside and chains a recovered event.
    const again = await openJsonlAuditSink(r.file, { batchDelayMs: 0 });
    again.record(statementEvent(99));
    await again.close();
    await exp.catchUp();
    const rows = await exported(name, 'replica-torn');
    assert.deepEqual(rows, await r.lines());
    assert.equal((JSON.parse(rows.at(-2)!) as { type: string; cause: string }).cause, 'torn_tail');
    assert.equal(exp.status().stopped, null);
  });

  it('exports with SELECT and INSERT alone on a table an owner created, as the README grants', async () => {
    const name = table('grants');
    const role = `mgt_auditpg_${RUN}_writer`;
    roles.push(role);
    const r = await replicaLog(tmp!.dir, 'grants');
    await r.write(30);
    // The owner creates the table (the first export with the owner's URL), then grants.
    const owner = open({ connectionString: PG_URL, table: name, replica: 'replica-owner-check', auditFile: join(tmp!.dir, 'nothing', 'audit.jsonl'), intervalMs: 3_600_000, log: capturingLog() });
    await owner.catchUp();
    await query(`CREATE ROLE ${role} LOGIN`);
    await query(`GRANT SELECT, INSERT ON ${name} TO ${role}`);
    const url = new URL(PG_URL);
    url.username = role;
    const log = capturingLog();
    const exp = open({ connectionString: url.toString(), table: name, replica: 'replica-grants', auditFile: r.file, intervalMs: 3_600_000, log });
    await exp.catchUp();
    assert.deepEqual(log.lines.filter((l) => l.level !== 'info'), []);
    assert.deepEqual(await exported(name, 'replica-grants'), await r.lines());
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await assert.rejects(client.query(`UPDATE ${name} SET line_text = '' WHERE replica = 'replica-grants'`), { code: '42501' });
    } finally {
      await client.end();
    }
    await r.close();
  });

  it('stops when the log it exported is replaced by a new one under the same replica id', async () => {
    const name = table('replaced');
    const r = await replicaLog(tmp!.dir, 'replaced');
    const log = capturingLog();
    const first = open({ connectionString: PG_URL, table: name, replica: 'replica-replaced', auditFile: r.file, intervalMs: 3_600_000, log });
    await r.write(60);
    await r.close();
    await first.catchUp();
    await first.close();
    // The operator moves the whole log aside; meshgate starts a new one in its place.
    await rename(r.dir, `${r.dir}-old`);
    const fresh = await replicaLog(tmp!.dir, 'replaced');
    await fresh.write(3);
    await fresh.close();
    const second = open({ connectionString: PG_URL, table: name, replica: 'replica-replaced', auditFile: r.file, intervalMs: 3_600_000, log });
    await second.catchUp();
    assert.equal(second.status().stopped?.code, 'MG_AUDIT_EXPORT_STOPPED');
    assert.match(second.status().stopped!.message, /replaced by a new log\. Give this replica a new state\.replicaId/);
    // Under a new id, the new log goes in beside the old rows.
    const third = open({ connectionString: PG_URL, table: name, replica: 'replica-replaced-2', auditFile: r.file, intervalMs: 3_600_000, log });
    await third.catchUp();
    assert.deepEqual(await exported(name, 'replica-replaced-2'), await fresh.lines());
  });

  it('sends per-row arrays as text[] literals PostgreSQL reads back as they were', async () => {
    const values = ['plain', 'a"quote', 'back\\slash', 'comma,brace}{', '', 'NULL', ' spaced '];
    const [row] = await query<{ v: string[] }>('SELECT $1::text[] AS v', [arrayLiteral(values)]);
    assert.deepEqual(row!.v, values);
    assert.deepEqual((await query<{ v: string[] }>('SELECT $1::text[] AS v', [arrayLiteral([])]))[0]!.v, []);
  });

  it('stops with MG_AUDIT_EXPORT_STOPPED when a rotated file is removed before it was exported', async () => {
    const name = table('gone');
    const r = await replicaLog(tmp!.dir, 'gone');
    const log = capturingLog();
    const first = open({ connectionString: PG_URL, table: name, replica: 'replica-gone', auditFile: r.file, batch: 500, intervalMs: 3_600_000, log });
    await r.write(20);
    await first.catchUp();
    await first.close();
    const exportedBefore = (await exported(name, 'replica-gone')).length;
    await r.write(200);
    const rotated = (await readdir(r.dir)).filter((f) => /^audit\.\d{6}\.jsonl$/.test(f)).sort();
    assert.ok(rotated.length >= 3);
    // The file right after what was exported goes (a retention job running ahead of the export).
    const firstRows = await query<{ file: number }>(`SELECT max(file) AS file FROM ${name} WHERE replica = 'replica-gone'`);
    const gone = `audit.${String(firstRows[0]!.file + 1).padStart(6, '0')}.jsonl`;
    await rm(join(r.dir, gone));
    const second = open({ connectionString: PG_URL, table: name, replica: 'replica-gone', auditFile: r.file, batch: 500, intervalMs: 3_600_000, log });
    await second.catchUp();
    const stopped = second.status().stopped;
    assert.equal(stopped?.code, 'MG_AUDIT_EXPORT_STOPPED');
    assert.match(stopped.message, new RegExp(`${gone.replace('.', '\\.')}|lines are missing`));
    assert.match(stopped.message, /restore/i);
    const logged = log.lines.filter((l) => l.level === 'error');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.fields['code'], 'MG_AUDIT_EXPORT_STOPPED');
    assert.equal((await exported(name, 'replica-gone')).length >= exportedBefore, true);
    await r.close();
  });
});
