/**
 * Administrative commands of MariaDB's own tools through meshgate: MariaDB's grants decide
 * who may run them, as they do direct. `mariadb-admin refresh` sends COM_REFRESH, which
 * needs RELOAD: a role without it gets MariaDB's own refusal, a role with it succeeds, and
 * either way the command is audited.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const ADMIN_CLI = 'mariadb-admin';
const cliMissing = spawnSync(ADMIN_CLI, ['--version'], { encoding: 'utf8' }).error !== undefined;
const skip = cliMissing ? `the '${ADMIN_CLI}' command-line client is not on PATH (Debian package mariadb-client)` : await serviceMissing('mariadb');

describe('mariadb-admin through meshgate', { skip }, () => {
  let h: Harness;

  const admin = (workload: string, ...command: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const files = h.clients[workload]!;
    const args = ['--no-defaults', '-h', '127.0.0.1', '-P', String(h.port), '-u', 'cli', '--connect-timeout=5', '--ssl', `--ssl-ca=${files.ca}`, `--ssl-cert=${files.cert}`, `--ssl-key=${files.key}`, ...command];
    return new Promise((resolve, reject) => {
      execFile(ADMIN_CLI, args, { timeout: 15_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') return reject(new Error(`${ADMIN_CLI} did not finish: ${error.message}\n${stderr}`));
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      });
    });
  };

  before(async () => {
    h = await startHarness({ name: 'mdbadmin', workloads: STANDARD_WORKLOADS });
    // The read-write role may reload (FLUSH); the read-only one may not. Global privileges
    // of this run's own role, dropped with it.
    const root = await connectAdmin(MARIADB);
    try {
      await root.query(`GRANT RELOAD ON *.* TO \`${h.roles.rw}\``);
    } finally {
      await root.end();
    }
  });
  after(async () => cleanup(() => h?.stop()));

  it('refresh (COM_REFRESH) runs where the role holds RELOAD, as it would direct, and is audited', async () => {
    const r = await admin('orders', 'refresh');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /MG_COMMAND_FORBIDDEN/);
    const events = await h.readAudit();
    const refresh = events.find((e) => e['type'] === 'statement' && e['command'] === 'refresh');
    assert.ok(refresh !== undefined, 'the refresh has its audit event');
    assert.equal(refresh['decision'], 'allow');
    assert.equal(refresh['error'], null);
  });

  it('refresh where the role lacks RELOAD gets MariaDB’s own refusal (1227), not meshgate’s', async () => {
    const r = await admin('analytics', 'refresh');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /RELOAD/);
    assert.doesNotMatch(r.stderr, /MG_/);
  });

  it('ping and status work as they do direct', async () => {
    assert.match((await admin('analytics', 'ping')).stdout, /mysqld is alive/);
    const status = await admin('analytics', 'status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /Uptime: \d+/);
  });
});
