/**
 * sysbench 1.0.20 (Debian's sysbench, libmariadb) through meshgate: its OLTP workloads as text
 * (--db-ps-mode=disable) and as server-side prepared statements (--db-ps-mode=auto), several
 * threads, short runs. sysbench 1.0 has no option naming a client certificate: with
 * --mysql-ssl=on it presents client-cert.pem / client-key.pem and trusts cacert.pem from its
 * working directory, so the workload's SVID files are put there under those names.
 *
 * Each run must end with no error and no reconnect, and each transaction must take as many
 * queries as it does direct.
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { clientDir, clientMissing, runProgram } from '../../helpers/external-clients.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';

const skip = await clientMissing('sysbench');

const TABLES = 2;
const TABLE_SIZE = 500;
const WORKLOADS = [
  { test: 'oltp_point_select', threads: 2 },
  { test: 'oltp_read_only', threads: 2 },
  // One thread: two writers on 500 rows deadlock now and then, direct as well.
  { test: 'oltp_read_write', threads: 1 },
] as const;

interface Report {
  readonly transactions: number;
  readonly queries: number;
  readonly ignoredErrors: number;
  readonly reconnects: number;
}

/** The counts from sysbench's "SQL statistics" section. */
function report(stdout: string): Report {
  const count = (label: string) => {
    const match = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(stdout);
    assert.ok(match, `sysbench printed no '${label}':\n${stdout}`);
    return Number(match[1]);
  };
  return { transactions: count('transactions'), queries: count('queries'), ignoredErrors: count('ignored errors'), reconnects: count('reconnects') };
}

describe('sysbench through meshgate', { skip }, () => {
  let h: Harness;
  let work: Awaited<ReturnType<typeof clientDir>>;

  const viaMeshgate = () => ['--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${h.port}`, '--mysql-user=bench', '--mysql-password=', `--mysql-db=${h.database}`, '--mysql-ssl=on'];
  const direct = () => ['--db-driver=mysql', `--mysql-host=${MARIADB.host}`, `--mysql-port=${MARIADB.port}`, `--mysql-user=${MARIADB.user}`, `--mysql-password=${MARIADB.password}`, `--mysql-db=${h.database}`];
  const sysbench = async (test: string, connection: readonly string[], ...rest: string[]) => {
    const result = await runProgram('sysbench', [test, ...connection, `--tables=${TABLES}`, `--table-size=${TABLE_SIZE}`, ...rest], { cwd: work.dir, timeoutMs: 60_000 });
    assert.equal(result.code, 0, `sysbench ${test} ${rest.join(' ')} failed:\n${result.stderr}\n${result.stdout}`);
    assert.doesNotMatch(result.stdout + result.stderr, /FATAL|error \d+/i);
    return result.stdout;
  };
  const commandsSince = async (from: number) => {
    const events = (await h.readAudit()).filter((e) => e.type === 'statement');
    return { events: events.length, commands: new Set(events.slice(from).map((e) => String(e.command))) };
  };

  before(async () => {
    work = await clientDir('sysbench');
    h = await startHarness({ name: 'sysbench', workloads: STANDARD_WORKLOADS });
    const root = await connectAdmin(MARIADB);
    try {
      // prepare makes a secondary index (CREATE INDEX): the role owns its database.
      await root.query(`GRANT ALL PRIVILEGES ON \`${h.database}\`.* TO \`${h.roles.rw}\``);
    } finally {
      await root.end();
    }
    const files = h.clients.orders!;
    await copyFile(files.cert, join(work.dir, 'client-cert.pem'));
    await copyFile(files.key, join(work.dir, 'client-key.pem'));
    await copyFile(files.ca, join(work.dir, 'cacert.pem'));
  });
  after(async () => cleanup(() => h?.stop(), () => work?.remove()));

  it('prepare makes its tables through meshgate over TLS with the workload certificate', async () => {
    const out = await sysbench('oltp_common', viaMeshgate(), 'prepare');
    assert.match(out, /Creating table 'sbtest2'/);
    const root = await connectAdmin(MARIADB);
    try {
      const [rows] = await root.query(`SELECT TABLE_NAME AS name, TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY name`, [h.database]);
      assert.deepEqual((rows as { name: string }[]).map((row) => row.name), ['sbtest1', 'sbtest2']);
      const [[count]] = (await root.query(`SELECT COUNT(*) AS n FROM \`${h.database}\`.sbtest2`)) as unknown as [[{ n: number }]];
      assert.equal(Number(count.n), TABLE_SIZE);
    } finally {
      await root.end();
    }
    const events = await h.readAudit();
    assert.ok(events.some((e) => e.type === 'connection' && e.decision === 'allow' && (e.identity as { spiffeId?: string } | null)?.spiffeId === STANDARD_WORKLOADS.orders));
  });

  for (const { test, threads } of WORKLOADS) {
    for (const mode of ['disable', 'auto'] as const) {
      it(`${test}, ${threads} thread(s), ${mode === 'auto' ? 'prepared statements' : 'text'}: no error, no reconnect, as many queries per transaction as direct`, async () => {
        const { events: before } = await commandsSince(0);
        const via = report(await sysbench(test, viaMeshgate(), `--db-ps-mode=${mode}`, `--threads=${threads}`, '--time=3', 'run'));
        assert.ok(via.transactions > 0, 'no transaction went through');
        assert.equal(via.ignoredErrors, 0);
        assert.equal(via.reconnects, 0);
        const { commands } = await commandsSince(before);
        if (mode === 'auto') assert.ok(commands.has('prepare') && commands.has('execute'), `expected server-side prepared statements; audited: ${[...commands].join(', ')}`);
        else assert.deepEqual([...commands], ['query']);
        const straight = report(await sysbench(test, direct(), `--db-ps-mode=${mode}`, '--threads=1', '--time=1', 'run'));
        assert.equal(via.queries / via.transactions, straight.queries / straight.transactions);
      });
    }
  }

  it('cleanup drops its tables through meshgate', async () => {
    const out = await sysbench('oltp_common', viaMeshgate(), 'cleanup');
    assert.match(out, /Dropping table 'sbtest1'/);
    const root = await connectAdmin(MARIADB);
    try {
      const [rows] = await root.query('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [h.database]);
      assert.deepEqual(rows, []);
    } finally {
      await root.end();
    }
  });
});
