/**
 * Two real meshgates (replicas), each serving real MariaDB to mysql2 clients and exporting its
 * audit into one PostgreSQL table: `audit query --postgres` answers across both replicas what
 * `audit query` answers over their two JSONL logs, filter by filter, in time order, digest
 * included; `audit verify --postgres` passes, then names the row after an UPDATE of one
 * row's line and after a DELETE.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { CliCommand, CliIO, OptionValues } from '../../../src/cli/command.ts';
import { auditCommands } from '../../../src/cli/commands/audit.ts';
import { queryCommand } from '../../../src/cli/commands/audit-query.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { PG_URL, serviceMissing } from '../../helpers/services.ts';

const missing = (await serviceMissing('mariadb')) || (await serviceMissing('postgres'));
const TABLE = `mgt_auditpg_${randomBytes(4).toString('hex')}`;

async function cli(command: CliCommand, args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true });
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd: process.cwd(), env: {} };
  return { code: await command.run(parsed.values as OptionValues, parsed.positionals, io), out, err };
}
const verifyCommand = auditCommands.find((c) => c.path.join(' ') === 'audit verify')!;

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('two meshgate replicas exporting their audit into one PostgreSQL table', { skip: missing }, () => {
  const replicas: { name: string; h: Harness }[] = [];
  let secretDir: string | undefined;

  before(async () => {
    secretDir = await mkdtemp(join(tmpdir(), 'meshgate-auditpg-'));
    const urlFile = join(secretDir, 'pg-url');
    await writeFile(urlFile, PG_URL, { mode: 0o600 });
    for (const name of ['auditpg-a', 'auditpg-b']) {
      const h = await startHarness({
        name: name.replace('-', ''),
        workloads: STANDARD_WORKLOADS,
        setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, note VARCHAR(200))'],
        config: (config) => {
          config.state = { ...config.state, replicaId: name };
          config.audit = { ...config.audit, rotate: { maxBytes: 16 * 1024 }, export: { postgres: { url: { file: urlFile }, table: TABLE, batch: 25, interval: '1s' } } };
        },
      });
      replicas.push({ name, h });
    }
  });
  after(async () => {
    await cleanup(
      ...replicas.map(({ h }) => () => h.stop()),
      () => sql(`DROP TABLE IF EXISTS ${TABLE}`),
      () => secretDir !== undefined && rm(secretDir, { recursive: true, force: true }),
    );
  });

  it('queries both replicas through PostgreSQL as through their files, and verifies each chain from the rows', async () => {
    const [a, b] = replicas as [{ name: string; h: Harness }, { name: string; h: Harness }];
    const connect = (h: Harness, who: 'orders' | 'analytics' | 'staging') => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(who) });
    const orders = await connect(a.h, 'orders');
    const analytics = await connect(b.h, 'analytics');
    try {
      for (let i = 0; i < 60; i++) {
        await orders.query(`INSERT INTO items VALUES (${i}, REPEAT('n', 100))`);
        await analytics.query(`SELECT id, note FROM items WHERE id = ${i}`);
        if (i % 10 === 0) await orders.query(`DELETE FROM items WHERE id = ${i}`);
      }
    } finally {
      await Promise.all([orders.end(), analytics.end()]);
    }
    await assert.rejects(connect(b.h, 'staging'), 'the staging namespace is denied, and audited');
    // Stopping meshgate sends what its export had not yet (the sink is closed first).
    await a.h.meshgate.close();
    await b.h.meshgate.close();
    assert.equal(a.h.meshgate.auditExport?.status().failing, false);

    const pgArgs = ['--postgres', PG_URL, '--table', TABLE];
    const hashes = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { hash: string }).hash);
    const filters: string[][] = [
      [],
      ['--identity', '*/sa/analytics'],
      ['--namespace', 'shop', '--verb', 'delete'],
      ['--decision', 'deny'],
      ['--type', 'statement', '--database', 'mgt_*', '--rule', '*orders*'],
      ['--verb', 'INSERT,SELECT', '--since', '1h', '--until', '2099-01-01'],
    ];
    let traceId: string | undefined;
    for (const filter of filters) {
      const fromPg = await cli(queryCommand, [...pgArgs, '--json', ...filter]);
      assert.equal(fromPg.code, 0, fromPg.err.join('\n'));
      const fromFiles = await Promise.all(replicas.map(({ h }) => cli(queryCommand, [h.auditFile, '--json', ...filter])));
      const expected = fromFiles.flatMap((r) => hashes(r.out));
      assert.ok(expected.length > 0, `something matches ${filter.join(' ')}`);
      assert.deepEqual(new Set(hashes(fromPg.out)), new Set(expected), `--postgres ${filter.join(' ')}`);
      assert.equal(fromPg.out.length, expected.length, 'each event once');
      const times = fromPg.out.map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
      assert.deepEqual(times, [...times].sort((x, y) => x - y), 'ordered by time across replicas');
      traceId ??= fromPg.out.map((l) => (JSON.parse(l) as { traceId?: string }).traceId).find((t) => t !== undefined);
    }
    const byTrace = await cli(queryCommand, [...pgArgs, '--json', '--trace', traceId!.slice(0, 12)]);
    assert.ok(byTrace.out.length >= 1 && byTrace.out.every((l) => (JSON.parse(l) as { traceId: string }).traceId === traceId));
    const onlyB = await cli(queryCommand, [...pgArgs, '--json', '--replica', 'auditpg-b', '--identity', '*/ns/shop/sa/orders']);
    assert.deepEqual(onlyB.out, [], "replica b served no orders statement");
    const table = await cli(queryCommand, [...pgArgs, '--identity', '*/sa/orders', '--verb', 'delete']);
    assert.match(table.out.join('\n'), /DELETE FROM items WHERE id = 50/);
    const digest = await cli(queryCommand, [...pgArgs, '--digest', '--json']);
    const inserts = digest.out.map((l) => JSON.parse(l) as { fingerprint: string; count: number }).find((d) => /^insert into items/i.test(d.fingerprint));
    assert.equal(inserts?.count, 60);

    const limited = await cli(queryCommand, [...pgArgs, '--json', '--limit', '3']);
    assert.equal(limited.out.length, 3, 'reading stops at --limit');

    const ok = await cli(verifyCommand, pgArgs);
    assert.equal(ok.code, 0, ok.out.join('\n'));
    assert.match(ok.out.join('\n'), /^ok: replica auditpg-a: \d+ rows, seq 1 to \d+, chain intact/m);
    assert.match(ok.out.join('\n'), /^ok: replica auditpg-b: /m);

    // An edit of one row's line: the statement it records, changed.
    const [edited] = await sql<{ seq: string }>(
      `UPDATE ${TABLE} SET line_text = replace(line_text, 'WHERE id = 33', 'WHERE id = 34') WHERE replica = 'auditpg-b' AND line_text LIKE '%WHERE id = 33%' AND type = 'statement' RETURNING seq`,
    );
    assert.ok(edited !== undefined);
    const afterEdit = await cli(verifyCommand, pgArgs);
    assert.equal(afterEdit.code, 4, afterEdit.out.join('\n'));
    assert.match(afterEdit.out[0]!, new RegExp(`^TAMPERED at replica auditpg-b seq ${edited.seq} \\(file \\d+ line \\d+\\): its line: content does not match its hash`));
    assert.match(afterEdit.out.join('\n'), /^ok: replica auditpg-a/m);

    // A row deleted from replica a.
    const [deleted] = await sql<{ seq: string }>(`DELETE FROM ${TABLE} WHERE replica = 'auditpg-a' AND seq = 40 RETURNING seq`);
    assert.ok(deleted !== undefined);
    const afterDelete = await cli(verifyCommand, [...pgArgs, '--replica', 'auditpg-a']);
    assert.equal(afterDelete.code, 4);
    assert.match(afterDelete.out[0]!, /^TAMPERED \(missing\) at replica auditpg-a seq 41 \(file \d+ line \d+\): the row of seq 40 is missing before this one \(deleted\)/);

    // Two rows' lines swapped: each line is whole, but not at its place in the chain.
    await sql(`UPDATE ${TABLE} t SET line_text = o.line_text FROM ${TABLE} o WHERE t.replica = 'auditpg-b' AND o.replica = 'auditpg-b' AND ((t.seq = 10 AND o.seq = 11) OR (t.seq = 11 AND o.seq = 10))`);
    const swapped = await cli(verifyCommand, [...pgArgs, '--replica', 'auditpg-b']);
    assert.match(swapped.out[0]!, /^TAMPERED \(reordered\) at replica auditpg-b seq 10 \(file \d+ line \d+\): its line is seq 11, not 10: lines moved between rows/);

    // Only what a SIEM reads, changed: the indexed column and the jsonb.
    await sql(`UPDATE ${TABLE} SET identity = 'spiffe://x/ns/y/sa/z' WHERE replica = 'auditpg-a' AND seq = 60`);
    await sql(`UPDATE ${TABLE} SET event = jsonb_set(event, '{rule}', '"other"') WHERE replica = 'auditpg-a' AND seq = 70`);
    const altered = await cli(verifyCommand, [...pgArgs, '--replica', 'auditpg-a']);
    assert.match(altered.out.join('\n'), /^TAMPERED \(altered\) at replica auditpg-a seq 60 .*its identity column differs/m);
    assert.match(altered.out.join('\n'), /^TAMPERED \(altered\) at replica auditpg-a seq 70 .*its event \(jsonb\) differs/m);
  });
});
