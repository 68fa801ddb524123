/** The `mariadb` command-line client through meshgate, with its SVID files on the command line. */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';

const hasCli = (() => {
  try {
    execFileSync('mariadb', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('mariadb CLI through meshgate', { skip: hasCli ? false : 'the mariadb client is not installed (apt-get install mariadb-client)' }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      name: 'mdbcmd',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.notes (id INT PRIMARY KEY, body VARCHAR(100))', "INSERT INTO {db}.notes VALUES (1, 'first')"],
    });
  });
  after(async () => h?.stop());

  const cli = (workload: string | null, args: string[], input?: string): Promise<Run> => {
    const tls =
      workload === null
        ? []
        : ['--ssl', '--ssl-ca', h.clients[workload]!.ca, '--ssl-cert', h.clients[workload]!.cert, '--ssl-key', h.clients[workload]!.key];
    return new Promise((resolve) => {
      const child = execFile(
        'mariadb',
        ['--no-defaults', '-h', '127.0.0.1', '-P', String(h.port), '-u', 'cli', '--batch', '--skip-column-names', ...tls, ...args],
        { timeout: 15_000 },
        (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin!.end(input);
    });
  };

  it('runs a query and prints rows', async () => {
    const run = await cli('orders', ['-D', h.database, '-e', 'SELECT id, body FROM notes; SELECT CURRENT_ROLE()']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '1\tfirst\nmdbcmd_rw\n');
  });

  it('runs a script from stdin with a transaction', async () => {
    const script = `USE ${h.database};\nSTART TRANSACTION;\nINSERT INTO notes VALUES (2, 'second');\nCOMMIT;\nSELECT COUNT(*) FROM notes;\n`;
    const run = await cli('orders', [], script);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), '2');
  });

  it('a read-only identity gets MariaDB error 1142 for a write', async () => {
    const run = await cli('analytics', ['-D', h.database, '-e', "INSERT INTO notes VALUES (3, 'nope')"]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /ERROR 1142/);
  });

  it('a staging identity is refused by the deny rule', async () => {
    const run = await cli('staging', ['-D', h.database, '-e', 'SELECT 1']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /\[MG_POLICY_DENIED\] denied by rule deny-staging/);
  });

  it('without TLS files the client is told what to present', async () => {
    const run = await cli(null, ['--skip-ssl', '-e', 'SELECT 1']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /\[MG_TLS_REQUIRED\]/);
  });
});
