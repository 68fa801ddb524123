/**
 * The `mariadb` command-line client (libmariadb) through meshgate: what an operator or a
 * CI job types must work with nothing but --ssl-* options added, and every refusal must be
 * readable on its stderr.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const CLI = 'mariadb';
const cliMissing = spawnSync(CLI, ['--version'], { encoding: 'utf8' }).error !== undefined;
const skip = cliMissing ? `the '${CLI}' command-line client is not on PATH (Debian package mariadb-client)` : await serviceMissing('mariadb');

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('mariadb CLI through meshgate', { skip }, () => {
  let h: Harness;

  /** `--no-defaults` first, so no option file on this machine changes what is tested. */
  const baseArgs = (workload: string | null, tls: 'mtls' | 'tls-only' | 'none' = 'mtls') => {
    const files = h.clients[workload ?? 'orders']!;
    const args = ['--no-defaults', '-h', '127.0.0.1', '-P', String(h.port), '-u', 'cli', '--connect-timeout=5'];
    if (tls === 'mtls') args.push('--ssl', '--ssl-verify-server-cert', `--ssl-ca=${files.ca}`, `--ssl-cert=${files.cert}`, `--ssl-key=${files.key}`);
    if (tls === 'tls-only') args.push('--ssl', `--ssl-ca=${files.ca}`);
    if (tls === 'none') args.push('--skip-ssl');
    return args;
  };

  const run = (args: readonly string[], input?: string): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = execFile(CLI, args, { timeout: 15_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') {
          reject(new Error(`${CLI} did not finish: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      });
      child.stdin!.end(input ?? '');
    });

  const query = (workload: string, sql: string, extra: readonly string[] = []) =>
    run([...baseArgs(workload), '-D', h.database, '--batch', ...extra, '-e', sql]);

  before(async () => {
    h = await startHarness({
      name: 'mdbcli',
      workloads: STANDARD_WORKLOADS,
      setupSql: [
        'CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(50))',
        "INSERT INTO {db}.items VALUES (1, 'one'), (2, 'two'), (3, 'three')",
      ],
    });
  });
  after(async () => h?.stop());

  it('-e with --batch prints the rows, tab-separated with a header', async () => {
    const r = await query('analytics', 'SELECT id, name FROM items ORDER BY id');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'id\tname\n1\tone\n2\ttwo\n3\tthree\n');
    assert.equal(r.stderr, '');
    const who = await query('analytics', 'SELECT CURRENT_ROLE(), DATABASE()', ['--skip-column-names']);
    assert.equal(who.code, 0, who.stderr);
    assert.equal(who.stdout, `${h.roles.ro}\t${h.database}\n`);
  });

  it('a write as the read-only identity fails with MariaDB error 1142 and a non-zero exit', async () => {
    const r = await query('analytics', "INSERT INTO items VALUES (9, 'nine')");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^ERROR 1142 \(42000\).*INSERT command denied/m);
    const after = await query('analytics', 'SELECT COUNT(*) FROM items', ['--skip-column-names']);
    assert.equal(after.stdout, '3\n');
  });

  it('a denied (staging) identity gets MG_POLICY_DENIED on stderr', async () => {
    const r = await query('staging', 'SELECT 1');
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /ERROR 1044 \(42000\).*\[MG_POLICY_DENIED\].*deny-staging/);
  });

  it('without a client certificate the connection is refused', async () => {
    const tlsOnly = await run([...baseArgs('orders', 'tls-only'), '--batch', '-e', 'SELECT 1']);
    assert.notEqual(tlsOnly.code, 0);
    assert.match(tlsOnly.stderr, /\[MG_CLIENT_CERT_MISSING\]/);
    const plain = await run([...baseArgs(null, 'none'), '--batch', '-e', 'SELECT 1']);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /\[MG_TLS_REQUIRED\]/);
  });

  it('-D picks the database, and USE switches it (COM_INIT_DB)', async () => {
    const r = await run([...baseArgs('orders'), '-D', 'information_schema', '--batch', '--skip-column-names', '-e', `SELECT DATABASE(); USE ${h.database}; SELECT DATABASE(), COUNT(*) FROM items`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `information_schema\n${h.database}\t3\n`);
    const none = await run([...baseArgs('orders'), '--batch', '--skip-column-names', '-e', 'SELECT DATABASE() IS NULL']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, '1\n');
  });

  it('runs a script from stdin: several statements and transactions', async () => {
    const script = [
      'CREATE TABLE ledger (id INT PRIMARY KEY AUTO_INCREMENT, amount INT) ENGINE=InnoDB;',
      'START TRANSACTION;',
      'INSERT INTO ledger (amount) VALUES (10), (20);',
      'UPDATE ledger SET amount = amount + 1;',
      'COMMIT;',
      'BEGIN;',
      'INSERT INTO ledger (amount) VALUES (999);',
      'ROLLBACK;',
      '-- a comment line, then a statement spread over lines',
      'SELECT COUNT(*), SUM(amount)',
      '  FROM ledger;',
      "SELECT 'done';",
      'DROP TABLE ledger;',
      '',
    ].join('\n');
    const r = await run([...baseArgs('orders'), '-D', h.database, '--skip-column-names'], script);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '2\t32\ndone\n');

    // A failing statement stops the script at that line and says which.
    const failing = await run([...baseArgs('orders'), '-D', h.database, '--skip-column-names'], "SELECT 'first';\nSELEC 2;\nSELECT 'never';\n");
    assert.notEqual(failing.code, 0);
    assert.equal(failing.stdout, 'first\n');
    assert.match(failing.stderr, /^ERROR 1064 \(42000\) at line 2/m);
  });

  it('Ctrl-C interrupts the running query (the CLI sends KILL QUERY <handshake id>)', async () => {
    const started = Date.now();
    const child = execFile(CLI, [...baseArgs('orders'), '--batch', '--skip-column-names', '-e', "SELECT SLEEP(30), 'woke'"], {
      timeout: 20_000,
      killSignal: 'SIGKILL',
      encoding: 'utf8',
    });
    const done = new Promise<CliResult>((resolve) => {
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (s: string) => (stdout += s));
      child.stderr!.on('data', (s: string) => (stderr += s));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
    // Interrupt once MariaDB runs the statement: before that, Ctrl-C just ends the CLI.
    const admin = await connectAdmin(MARIADB);
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const [rows] = await admin.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'mg_${h.roles.rw}' AND INFO LIKE '%*/ SELECT SLEEP(30), %' AND STATE = 'User sleep'`);
        if ((rows as unknown[]).length > 0) break;
        assert.ok(Date.now() < deadline, 'the CLI never started its query');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      await admin.end();
    }
    child.kill('SIGINT');
    const r = await done;
    assert.match(r.stdout, /Ctrl-C -- query killed/);
    assert.doesNotMatch(r.stdout, /woke/);
    assert.match(r.stderr, /^ERROR 1317 \(70100\).*Query execution was interrupted/m);
    assert.notEqual(r.code, 0);
    assert.ok(Date.now() - started < 15_000, 'the query ran to its end: the KILL missed it');
    const kill = (await h.readAudit()).find((e) => e.type === 'statement' && /^KILL QUERY \d+$/.test(String(e.statement)));
    assert.ok(kill, 'the KILL is audited');
    assert.equal(kill.error, null);
  });

  it('audits what the CLI ran, under the caller identity', async () => {
    const events = await h.readAudit();
    const statements = events.filter((e) => e.type === 'statement');
    const insert = statements.find((e) => e.statement === "INSERT INTO items VALUES (9, 'nine')");
    assert.ok(insert, 'the refused write is audited');
    assert.equal((insert.identity as { spiffeId: string }).spiffeId, STANDARD_WORKLOADS.analytics);
    assert.equal((insert.error as { code: number }).code, 1142);
    const use = statements.find((e) => e.command === 'init_db' && e.statement === h.database);
    assert.ok(use, 'USE is audited as init_db');
    assert.ok(events.some((e) => e.type === 'connection' && e.decision === 'deny' && e.rule === 'deny-staging/0'));
  });
});
