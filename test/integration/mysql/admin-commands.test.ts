/**
 * Administrative commands of MariaDB's own tools through meshgate: MariaDB's grants decide
 * who may run them, as they do direct. `mariadb-admin refresh` sends COM_REFRESH, which
 * needs RELOAD: a role without it gets MariaDB's own refusal, a role with it succeeds, and
 * either way the command is audited.
 *
 * Direct, for comparison, is the same mariadb-admin logged in as the role's own account
 * (the harness's static account for that role): the same grants, so the same answers.
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

/** mariadb-admin's flush commands (`mariadb-admin --help`): FLUSH statements or COM_REFRESH. */
const FLUSHES = [
  'flush-all-statistics',
  'flush-client-statistics',
  'flush-engine-log',
  'flush-error-log',
  'flush-general-log',
  'flush-hosts',
  'flush-index-statistics',
  'flush-logs',
  'flush-privileges',
  'flush-relay-log',
  'flush-slow-log',
  'flush-status',
  'flush-table-statistics',
  'flush-tables',
  'flush-threads',
  'flush-user-resources',
  'flush-user-statistics',
  'reload',
];

describe('mariadb-admin through meshgate', { skip }, () => {
  let h: Harness;

  const admin = (workload: string, ...command: string[]) => {
    const files = h.clients[workload]!;
    return run(['--no-defaults', '-h', '127.0.0.1', '-P', String(h.port), '-u', 'cli', '--connect-timeout=5', '--ssl', `--ssl-ca=${files.ca}`, `--ssl-cert=${files.cert}`, `--ssl-key=${files.key}`, ...command]);
  };
  /** mariadb-admin direct to MariaDB as the account of the role the workload's policy maps to. */
  const direct = (workload: 'orders' | 'analytics', ...command: string[]) => {
    const account = h.provisioned.accounts.get(workload === 'orders' ? h.roles.rw : h.roles.ro)!;
    return run(['--no-defaults', '-h', MARIADB.host, '-P', String(MARIADB.port), '-u', account.user, `-p${account.password}`, '--connect-timeout=5', ...command]);
  };
  const run = (args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
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

  /** Both ways: exit code, stdout and stderr. */
  const bothWays = async (workload: 'orders' | 'analytics', ...command: string[]) => ({ via: await admin(workload, ...command), direct: await direct(workload, ...command) });

  it('every flush-* succeeds where the role holds RELOAD, as direct', async () => {
    for (const flush of FLUSHES) {
      const { via, direct } = await bothWays('orders', flush);
      assert.deepEqual(via, direct, flush);
      assert.equal(via.code, 0, `${flush}: ${via.stderr}`);
    }
  });

  it('every flush-* is refused by MariaDB where the role lacks RELOAD, with the same words as direct', async () => {
    for (const flush of FLUSHES) {
      const { via, direct } = await bothWays('analytics', flush);
      assert.notEqual(direct.code, 0, flush);
      assert.deepEqual(via, direct, flush);
    }
  });

  it('commands the role may not run get MariaDB’s own answer, as direct: debug, kill of an unknown id, create and drop database, start-slave, password', async () => {
    for (const command of [['debug'], ['kill', '999999'], ['create', `${h.database}_other`], ['drop', '-f', `${h.database}_other`], ['start-slave'], ['password', 'not-changed']]) {
      const { via, direct } = await bothWays('orders', ...command);
      assert.notEqual(direct.code, 0, command.join(' '));
      assert.deepEqual(via, direct, command.join(' '));
    }
  });

  it('version reports the server as direct', async () => {
    const { via, direct } = await bothWays('analytics', 'version');
    assert.equal(via.code, 0, via.stderr);
    const server = (out: string) => out.split('\n').filter((line) => /^(Server version|Protocol version)/.test(line));
    assert.equal(server(via.stdout).length, 2);
    assert.deepEqual(server(via.stdout), server(direct.stdout));
  });

  it('variables and extended-status list what they list direct', async () => {
    const names = (out: string) => out.split('\n').map((line) => /^\| (\w+)\s+\|/.exec(line)?.[1]).filter((name) => name !== undefined && name !== 'Variable_name');
    for (const command of ['variables', 'extended-status']) {
      const { via, direct } = await bothWays('analytics', command);
      assert.equal(via.code, 0, via.stderr);
      assert.ok(names(via.stdout).length > 100, `${command} listed ${names(via.stdout).length} names`);
      assert.deepEqual(names(via.stdout), names(direct.stdout), command);
    }
    const value = (out: string, name: string) => new RegExp(`^\\| ${name}\\s+\\| (.*?)\\s+\\|$`, 'm').exec(out)?.[1];
    const { via, direct } = await bothWays('analytics', 'variables');
    for (const name of ['version', 'character_set_server', 'collation_server', 'sql_mode']) assert.equal(value(via.stdout, name), value(direct.stdout, name), name);
  });

  it('processlist shows the session’s own upstream thread running it, meshgate’s tag appended', async () => {
    const r = await admin('analytics', 'processlist', '--verbose');
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split('\n').filter((line) => /^\| \d+ /.test(line));
    const own = rows.filter((line) => line.includes('show full processlist'));
    assert.equal(own.length, 1, r.stdout);
    assert.match(own[0]!, new RegExp(`\\| mg_${h.roles.ro} `));
    assert.match(own[0]!, /meshgate_identity=/);
  });

  it('shutdown is meshgate’s refusal (MG_COMMAND_FORBIDDEN, docs/errors.md), where direct MariaDB refuses it for want of SHUTDOWN; the server stays up', async () => {
    const { via, direct } = await bothWays('orders', 'shutdown');
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /SHUTDOWN privilege/);
    assert.notEqual(via.code, 0);
    assert.match(via.stderr, /\[MG_COMMAND_FORBIDDEN\] COM_SHUTDOWN/);
    assert.match((await admin('orders', 'ping')).stdout, /mysqld is alive/);
  });

  it('ping and status work as they do direct', async () => {
    assert.match((await admin('analytics', 'ping')).stdout, /mysqld is alive/);
    const status = await admin('analytics', 'status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /Uptime: \d+/);
  });
});
