/**
 * PHP's mysqli (mysqlnd) through meshgate: a real client that reads through server-side
 * cursors (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH). The same
 * script runs direct against MariaDB and through meshgate; the application must see the same
 * thing both ways, the failing cursor included, and the rows it fetched are audited.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const SCRIPT = fileURLToPath(new URL('../../fixtures/clients/mysqli-cursor.php', import.meta.url));
const php = spawnSync('php', ['-r', 'exit(extension_loaded("mysqli") ? 0 : 3);'], { encoding: 'utf8' });
const skip =
  php.error !== undefined
    ? "the 'php' command is not on PATH (Debian packages php-cli and php-mysql)"
    : php.status !== 0
      ? "PHP has no mysqli extension (Debian package php-mysql)"
      : await serviceMissing('mariadb');

type Event = Record<string, unknown> & { type: string; command: string; statement: string | null; traceId: string; rowsReturned: number; error: { code: string | number } | null };

function runScript(config: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    // The configuration (a password, direct) goes in the environment, not on the command line.
    const env = { ...process.env, MYSQLI_CURSOR_CONFIG: JSON.stringify(config) };
    execFile('php', [SCRIPT], { env, timeout: 30_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error !== null) return reject(new Error(`php ${SCRIPT} failed (${error.signal ?? error.code}): ${stderr}`));
      resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

describe('PHP mysqli cursors through meshgate', { skip }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      name: 'mysqli',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.nums (a INT PRIMARY KEY)', 'INSERT INTO {db}.nums VALUES (1), (2), (3), (4), (5)'],
    });
  });
  after(async () => cleanup(() => h?.stop()));

  it('sees what it sees direct, a cursor that fails to open included, and its fetched rows are audited', async () => {
    const account = h.provisioned.accounts.get(h.roles.rw)!;
    const direct = await runScript({ host: MARIADB.host, port: MARIADB.port, user: account.user, password: account.password, database: h.database, ssl: null });
    const through = await runScript({ host: '127.0.0.1', port: h.port, user: 'php', password: '', database: h.database, ssl: h.clients['orders'] });
    assert.deepEqual(through, direct);
    // What direct shows, so a change in PHP itself is noticed: both reads, then the query.
    assert.deepEqual(direct['read 1'], { executed: true, rows: [1, 2, 3, 4], errno: 0 });
    assert.deepEqual(direct['read 2'], { executed: true, rows: [1, 2, 3, 4], errno: 0 });
    assert.deepEqual(direct['query after'], ['42']);
    assert.deepEqual(direct['other connection'], ['44']);

    const audit = (await h.readAudit()).filter((e): e is Event => e.type === 'statement' && typeof e.statement === 'string' && e.statement.includes('mysqli cursor */'));
    const executes = audit.filter((e) => e.command === 'execute');
    const fetches = audit.filter((e) => e.command === 'fetch');
    assert.equal(executes.length, 2);
    assert.ok(fetches.length >= 2, 'mysqli reads the rows with COM_STMT_FETCH');
    assert.equal(fetches.reduce((n, e) => n + e.rowsReturned, 0), 8, 'every row fetched is counted, over both reads');
    for (const execute of executes) {
      const own = fetches.filter((f) => f.traceId === execute.traceId);
      assert.equal(own.reduce((n, e) => n + e.rowsReturned, 0), 4, "each read's fetches carry its execute's trace id");
      assert.deepEqual(
        own.map((f) => (f['prepared'] as { fetch?: number } | undefined)?.fetch),
        own.map((_, i) => i + 1),
        'each fetch is counted: the first, second, … of its cursor',
      );
    }
    const failing = (await h.readAudit()).find((e) => e.type === 'statement' && e['command'] === 'execute' && String(e['statement']).includes('mysqli cursor error')) as Event | undefined;
    assert.equal(failing?.error?.code, 1242, 'the failing execute is audited with its error');
  });
});
