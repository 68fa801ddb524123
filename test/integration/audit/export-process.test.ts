/**
 * `meshgate serve` as a real process with the audit export: first pointed at a closed port
 * (PostgreSQL unreachable: it serves anyway, says so once, and stops promptly on SIGTERM),
 * then started again on the same audit file with the real PostgreSQL: the table ends with
 * every line of both runs, once each, and `audit verify --postgres` passes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { stringify } from 'yaml';
import { verifyPostgresAudit } from '../../../src/audit-pg/index.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, MARIADB, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { PG_URL, serviceMissing } from '../../helpers/services.ts';
import { readLines } from '../../unit/audit/seal-helpers.ts';

const missing = (await serviceMissing('mariadb')) || (await serviceMissing('postgres'));
const MAIN = new URL('../../../src/cli/main.ts', import.meta.url).pathname;
const TABLE = `mgt_auditpg_${randomBytes(4).toString('hex')}_process`;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('meshgate serve (process) exporting its audit to PostgreSQL', { skip: missing }, () => {
  let h: Harness | undefined;
  before(async () => {
    h = await startHarness({ name: 'auditpgproc', workloads: STANDARD_WORKLOADS });
  });
  after(async () => {
    await cleanup(
      () => h?.stop(),
      async () => {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          await client.query(`DROP TABLE IF EXISTS ${TABLE}`);
        } finally {
          await client.end();
        }
      },
    );
  });

  async function serveOnce(pgUrl: string, statements: number): Promise<{ stderr: string; exitMs: number }> {
    const roles: Record<string, unknown> = {};
    for (const account of h!.provisioned.accounts.values()) {
      await writeFile(join(h!.dir, `${account.role}.pw`), account.password, { mode: 0o600 });
      roles[account.role] = { user: account.user, password: { file: `${account.role}.pw` } };
    }
    await writeFile(join(h!.dir, 'audit-pg-url'), pgUrl, { mode: 0o600 });
    const config = join(h!.dir, 'serve-export.yaml');
    await writeFile(
      config,
      stringify({
        listener: { port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key' } },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
        upstream: { host: MARIADB.host, port: MARIADB.port, roles },
        policy: { dir: 'policy' },
        state: { replicaId: 'proc-replica' },
        // An hour between looks: what the second run exports, it exports at start and at SIGTERM.
        audit: { file: join(h!.dir, 'export-audit.jsonl'), export: { postgres: { url: { file: 'audit-pg-url' }, table: TABLE, interval: '1h' } } },
      }),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    // meshgate's log is on stdout; a failed start's one-line error on stderr.
    const stderr: string[] = [];
    child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
    child.stdout.on('data', (d: Buffer) => stderr.push(d.toString()));
    let port = 0;
    for await (const line of createInterface({ input: child.stdout })) {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (match) {
        port = Number(match[1]);
        break;
      }
    }
    assert.ok(port > 0, `meshgate did not start: ${stderr.join('')}`);
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'u', database: h!.database, ssl: h!.ssl('orders') });
    for (let i = 0; i < statements; i++) await conn.query(`SELECT ${i} AS n`);
    await conn.end();
    const start = Date.now();
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, stderr.join(''));
    return { stderr: stderr.join(''), exitMs: Date.now() - start };
  }

  it('serves with PostgreSQL unreachable, then exports every line of both runs once when it is there', async () => {
    const down = new URL(PG_URL);
    down.port = String(await closedPort());
    const first = await serveOnce(down.toString(), 20);
    const warnings = first.stderr.split('\n').filter((l) => l.includes('audit export to PostgreSQL is failing'));
    assert.equal(warnings.length, 1, first.stderr);
    assert.match(warnings[0]!, /ECONNREFUSED/);
    assert.ok(first.exitMs < 10_000, `stopped in ${first.exitMs} ms`);

    const second = await serveOnce(PG_URL, 15);
    assert.ok(!second.stderr.includes('"level":"warn"'), second.stderr);
    const lines = await readLines(join(h!.dir, 'export-audit.jsonl'));
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ seq: string; line_text: string }>(`SELECT seq, line_text FROM ${TABLE} WHERE replica = 'proc-replica' ORDER BY seq`);
      assert.deepEqual(rows.map((r) => r.line_text), lines);
      assert.deepEqual(rows.map((r) => Number(r.seq)), lines.map((_, i) => i + 1));
    } finally {
      await client.end();
    }
    assert.ok(lines.filter((l) => l.includes('"type":"statement"')).length === 35);
    const verdict = await verifyPostgresAudit({ connectionString: PG_URL, table: TABLE });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.findings));
  });
});
