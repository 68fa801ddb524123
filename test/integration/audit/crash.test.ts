/**
 * `meshgate serve` killed with SIGKILL under load (issue 12, points 4 and 5), then started
 * again on the same audit file. strict: every statement a client saw acknowledged, and every
 * row that reached MariaDB, has its intent on disk. buffered: the events lost are at most
 * the queue's bound (audit.highWaterEvents), as documented. Either way the restart gets
 * past whatever the kill left (a torn last line is set aside and recorded), and
 * `meshgate audit verify` passes.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import type { AuditDurability } from '../../../src/audit/types.ts';
import { exitOf, spawnCli } from '../../helpers/cli.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { statementEvent } from '../../unit/audit/helpers.ts';

const missing = await serviceMissing('mariadb');
const HIGH_WATER = 1000;

describe('meshgate serve killed and restarted on its audit file', { skip: missing }, () => {
  let h: Harness;
  let roles: Record<string, unknown>;
  before(async () => {
    h = await startHarness({ name: 'adcrash', workloads: STANDARD_WORKLOADS, setupSql: ['CREATE TABLE {db}.t (v VARCHAR(40) PRIMARY KEY)'] });
    roles = {};
    for (const account of h.provisioned.accounts.values()) {
      await writeFile(join(h.dir, `${account.role}.pw`), account.password, { mode: 0o600 });
      roles[account.role] = { user: account.user, password: { file: join(h.dir, `${account.role}.pw`) } };
    }
  });
  after(async () => h?.stop());

  /** A `meshgate serve` child on `auditFile`, and the port it listens on. */
  async function serve(auditFile: string, durability: AuditDurability) {
    const config = join(h.dir, `serve-${durability}.yaml`);
    await writeFile(
      config,
      stringify({
        listener: { port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key' } },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
        upstream: { host: MARIADB.host, port: MARIADB.port, roles },
        policy: { dir: 'policy' },
        audit: { file: auditFile, durability, highWaterEvents: HIGH_WATER },
      }),
    );
    const child = spawnCli(['serve', '--config', config]);
    const stderr: string[] = [];
    child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
    const stdout: string[] = [];
    let port = 0;
    const lines = createInterface({ input: child.stdout });
    for await (const line of lines) {
      stdout.push(line);
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (match) {
        port = Number(match[1]);
        break;
      }
    }
    lines.on('line', (line) => stdout.push(line));
    assert.ok(port > 0, `meshgate did not start: ${stderr.join('')}`);
    return { child, port, stdout, stderr };
  }

  async function verify(file: string): Promise<{ code: number | null; out: string }> {
    const child = spawnCli(['audit', 'verify', file]);
    const chunks: string[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d.toString()));
    const { code, stderr } = await exitOf(child);
    return { code, out: chunks.join('') + stderr };
  }

  async function events(file: string): Promise<Record<string, unknown>[]> {
    return (await readFile(file, 'utf8'))
      .split('\n')
      .filter((l) => l.endsWith('}'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  for (const durability of ['strict', 'buffered'] as const) {
    it(`${durability}: after kill -9 under load, acknowledged statements are on the record as documented, and the restart verifies`, async () => {
      const auditFile = join(h.dir, `crash-${durability}.jsonl`);
      const first = await serve(auditFile, durability);
      const acked: string[] = [];
      const clients = await Promise.all(Array.from({ length: 8 }, () => mysql.createConnection({ host: '127.0.0.1', port: first.port, user: 'u', database: h.database, ssl: h.ssl('orders') })));
      const stopAt = Date.now() + 1500;
      const load = clients.map(async (conn, c) => {
        for (let i = 0; ; i++) {
          const value = `${durability[0]}-${c}-${i}`;
          if (Date.now() >= stopAt) first.child.kill('SIGKILL');
          try {
            await conn.query('INSERT INTO t VALUES (?)', [value]);
            acked.push(value);
          } catch {
            return;
          }
        }
      });
      await Promise.all(load);
      await exitOf(first.child);
      for (const conn of clients) conn.destroy();
      assert.ok(acked.length > 50, `load ran (${acked.length} statements acknowledged)`);

      const before = await events(auditFile);
      const direct = await mysql.createConnection(MARIADB);
      const [rows] = await direct.query<mysql.RowDataPacket[]>(`SELECT v FROM \`${h.database}\`.t WHERE v LIKE ?`, [`${durability[0]}-%`]);
      await direct.end();
      const recordedAs = (type: string) => new Set(before.filter((e) => e['type'] === type).map((e) => /'([^']+)'/.exec(String(e['statement']))?.[1]));
      if (durability === 'strict') {
        const intents = recordedAs('intent');
        for (const value of acked) assert.ok(intents.has(value), `acknowledged ${value} has its intent on disk`);
        for (const row of rows) assert.ok(intents.has(String(row['v'])), `row ${row['v']} in MariaDB has its intent on disk`);
      } else {
        const statements = recordedAs('statement');
        const lost = acked.filter((value) => !statements.has(value));
        process.stderr.write(`# buffered, kill -9: ${acked.length} statements acknowledged, ${lost.length} without an event\n`);
        assert.ok(lost.length <= HIGH_WATER, `${lost.length} acknowledged statements without an event: at most audit.highWaterEvents (${HIGH_WATER})`);
      }

      const second = await serve(auditFile, durability);
      second.child.kill('SIGTERM');
      const { code } = await exitOf(second.child);
      assert.equal(code, 0, second.stderr.join(''));
      const verdict = await verify(auditFile);
      assert.equal(verdict.code, 0, verdict.out);
    });
  }

  it('starts on a file whose last line is torn: the tail set aside, a recovered event chained, verify passes', async () => {
    const auditFile = join(h.dir, 'torn.jsonl');
    const sink = await openJsonlAuditSink(auditFile);
    for (let i = 1; i <= 3; i++) sink.record(statementEvent(i));
    await sink.close();
    const torn = '{"type":"statement","time":"2025-01-01T00:00:00.004Z","sessionId":"s-4","engine":"mys';
    await appendFile(auditFile, torn);
    assert.notEqual((await verify(auditFile)).code, 0, 'the torn file does not verify as it is');

    const running = await serve(auditFile, 'strict');
    running.child.kill('SIGTERM');
    const { code, signal } = await exitOf(running.child);
    assert.equal(code, 0, `${signal} ${running.stderr.join('')}`);
    const aside = (await readdir(h.dir)).filter((name) => name.startsWith('torn.jsonl.torn-'));
    assert.equal(aside.length, 1, 'the torn tail is in a file of its own');
    assert.equal(await readFile(join(h.dir, aside[0]!), 'utf8'), torn);
    const recorded = await events(auditFile);
    // Three statements, the recovery, then the policy meshgate put in force at start.
    assert.deepEqual(recorded.map((event) => event['type']), ['statement', 'statement', 'statement', 'recovered', 'policy']);
    assert.equal(recorded[3]!['type'], 'recovered');
    assert.equal(recorded[3]!['cause'], 'torn_tail');
    assert.equal((recorded[3] as { torn: { nextSeq: number; setAside: string } }).torn.nextSeq, 4);
    assert.ok(running.stdout.join('\n').includes('set aside'), 'the log says so');
    const verdict = await verify(auditFile);
    assert.equal(verdict.code, 0, verdict.out);
  });
});
