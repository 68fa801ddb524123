/**
 * `meshgate serve` checks its upstreams at start against the real MariaDB: a wrong admin or
 * role password, or nothing listening, is one log line naming the account, the address,
 * MariaDB's error and the fix, and start fails at once (exit 1 from the command); with
 * --wait-for-upstream it waits for a MariaDB that appears late. Refused clients leave a
 * warn line in the server log too, not only in the audit file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import { resolveConfig } from '../../src/config/load.ts';
import type { MeshgateConfigInput } from '../../src/config/schema.ts';
import { startMeshgate } from '../../src/server.ts';
import { captureLog } from '../helpers/log.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../helpers/meshgate.ts';
import { closedPort, startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const NAME = `up${randomBytes(3).toString('hex')}`;

describe('meshgate serve: upstream checks at start', { timeout: 120_000 }, () => {
  let h: Harness;
  const serverLog = captureLog();
  const closers: (() => Promise<unknown>)[] = [];

  before(async () => {
    // Dynamic credentials: the harness makes the admin account; static role accounts exist too.
    h = await startHarness({ name: NAME, workloads: STANDARD_WORKLOADS, credentials: 'dynamic', log: serverLog.log });
    await writeFile(join(h.dir, 'wrong.pw'), 'not-the-password', { mode: 0o600 });
  });
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await h?.stop();
  });

  /** A config on the harness's files; `upstream` replaces the MariaDB section. */
  function config(upstream: MeshgateConfigInput['upstream'], name: string): MeshgateConfigInput {
    return {
      listener: { host: '127.0.0.1', port: 0, tls: { cert: join(h.dir, 'server/server.crt'), key: join(h.dir, 'server/server.key') } },
      trust: { bundles: [join(h.caDir, 'bundle.pem')], trustDomains: [TRUST_DOMAIN] },
      upstream,
      state: { embedded: { dir: join(h.dir, `state-${name}`) } },
      policy: { dir: join(h.dir, 'policy') },
      audit: { file: join(h.dir, `audit-${name}.jsonl`) },
    };
  }
  const adminWith = (file: string, port = MARIADB.port) => ({ host: MARIADB.host, port, credentials: { admin: { user: h.adminUser!, password: { file } } } });
  const roleFile = (role: string) => join(h.dir, 'secrets', role);

  it('a wrong admin password: one error line with the account, address, 1045 and the fix; start fails at once', async () => {
    const { log, lines, text } = captureLog();
    const started = Date.now();
    await assert.rejects(startMeshgate(resolveConfig(config(adminWith(join(h.dir, 'wrong.pw')), 'admin'), join(h.dir, 'x.yaml')), log), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_AUTH_FAILED');
      assert.match(error.message, new RegExp(`refused the admin account '${h.adminUser!}'`));
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'no waiting without --wait-for-upstream');
    const errors = lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, text());
    assert.equal(errors[0]!.code, 'MG_UPSTREAM_AUTH_FAILED');
    assert.equal(errors[0]!.account, h.adminUser!);
    assert.equal(errors[0]!.address, `${MARIADB.host}:${MARIADB.port}`);
    assert.equal(errors[0]!.upstreamError, 1045);
    assert.match(errors[0]!.message, /MariaDB at [\d.]+:\d+ refused the admin account .*1045 Access denied/);
    assert.match(errors[0]!.message, /the password in \S*wrong\.pw \(upstream\.credentials\.admin\.password\) does not match/);
    assert.ok(!text().includes('not-the-password'), 'the log never shows a password');
  });

  it('a wrong static role password names that role account; the right one passes', async () => {
    const { log, lines, text } = captureLog();
    const roles = {
      [h.roles.rw]: { user: `mg_${h.roles.rw}`, password: { file: join(h.dir, 'wrong.pw') } },
      [h.roles.ro]: { user: `mg_${h.roles.ro}`, password: { file: roleFile(h.roles.ro) } },
    };
    await assert.rejects(startMeshgate(resolveConfig(config({ host: MARIADB.host, port: MARIADB.port, roles }, 'roles'), join(h.dir, 'x.yaml')), log), /MG_UPSTREAM_AUTH_FAILED|refused role/);
    const errors = lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, text());
    assert.equal(errors[0]!.account, `mg_${h.roles.rw}`);
    assert.match(errors[0]!.message, new RegExp(`refused role ${h.roles.rw}'s account 'mg_${h.roles.rw}' \\(1045`));
    assert.match(errors[0]!.message, /upstream\.roles\.\w+\.password\) holds its password/);
  });

  it('nothing listening: says so with the address and the fix, and how to wait', async () => {
    const { log, lines, text } = captureLog();
    const port = await closedPort();
    await assert.rejects(startMeshgate(resolveConfig(config(adminWith(roleFile('admin'), port), 'closed'), join(h.dir, 'x.yaml')), log), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_UNAVAILABLE');
      assert.match(error.message, /--wait-for-upstream 60s/);
      return true;
    });
    const errors = lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, text());
    assert.equal(errors[0]!.account, null, 'a MariaDB that does not answer is not an account problem');
    assert.equal(errors[0]!.upstreamError, 'ECONNREFUSED');
    assert.match(errors[0]!.message, new RegExp(`nothing listens on 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start MariaDB`));
  });

  it('a Firestore emulator that is not there: its own line, with how to start one or let meshgate launch it', async () => {
    const { log, lines, text } = captureLog();
    const port = await closedPort();
    const input = { ...config(adminWith(roleFile('admin')), 'fs'), firestore: { port: 0, project: 'mg-it-upstream', upstream: { emulator: `127.0.0.1:${port}` } } };
    await assert.rejects(startMeshgate(resolveConfig(input, join(h.dir, 'x.yaml')), log), /MG_UPSTREAM_UNAVAILABLE/);
    const errors = lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, `MariaDB passes, Firestore does not:\n${text()}`);
    assert.equal(errors[0]!.upstream, 'firestore');
    assert.match(errors[0]!.message, new RegExp(`nothing listens on 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\), the Firestore emulator firestore\\.upstream\\.emulator names: .*launchEmulator`));
  });

  it('--wait-for-upstream: waits for a MariaDB that starts listening late, then serves', async () => {
    const proxy: TcpProxy = await startTcpProxy({ host: MARIADB.host, port: MARIADB.port });
    closers.push(() => proxy.close());
    await proxy.stop();
    const { log, lines, text } = captureLog();
    const starting = startMeshgate(resolveConfig(config(adminWith(roleFile('admin'), proxy.port), 'wait'), join(h.dir, 'x.yaml')), log, process.env, { waitForUpstreamMs: 30_000 });
    const outcome = starting.then(
      (running) => {
        closers.push(() => running.close());
        return running;
      },
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.ok(lines.some((l) => l.level === 'warn' && l.code === 'MG_UPSTREAM_UNAVAILABLE' && /waiting for it \(--wait-for-upstream\)/.test(l.message)), text());
    await proxy.start();
    const running = await outcome;
    assert.ok(!(running instanceof Error), `started once MariaDB listened: ${String(running)}\n${text()}`);
    if (running instanceof Error) return;
    assert.ok(lines.some((l) => l.level === 'info' && l.message === 'upstreams answer; starting'), text());
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1, `one line while waiting, not one per retry:\n${text()}`);
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: running.address!.port, user: 'u', database: h.database, ssl: h.ssl('orders') });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      assert.equal(rows[0]!['r'], h.roles.rw);
    } finally {
      await conn.end();
    }
  });

  it('the serve command: exit 1 with the message at once; --wait-for-upstream gives up after its duration', async () => {
    const port = await closedPort();
    const file = join(h.dir, 'closed.yaml');
    await writeFile(file, stringify(config(adminWith(roleFile('admin'), port), 'cli')));
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      let output = '';
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      // The JSON log is on stdout; both are read as one here.
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const started = Date.now();
      const [code] = (await once(child, 'exit')) as [number];
      clearTimeout(timer);
      return { code, output, ms: Date.now() - started };
    };
    const fast = await run([]);
    assert.equal(fast.code, 1, fast.output);
    assert.match(fast.output, new RegExp(`meshgate serve: \\[MG_UPSTREAM_UNAVAILABLE\\] nothing listens on 127\\.0\\.0\\.1:${port}`));
    const logged = fast.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(logged.some((l) => l['level'] === 'error' && l['code'] === 'MG_UPSTREAM_UNAVAILABLE' && l['address'] === `127.0.0.1:${port}`), fast.output);

    const waited = await run(['--wait-for-upstream', '2s']);
    assert.equal(waited.code, 1, waited.output);
    assert.match(waited.output, /still not answering after --wait-for-upstream 2s/);
    assert.ok(waited.ms >= 2000, `waited ${waited.ms} ms`);
  });

  it('a refused MySQL login leaves a warn line with the code, peer and identity in the server log', async () => {
    const before = serverLog.lines.length;
    await assert.rejects(mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl('staging') }), /MG_POLICY_DENIED/);
    await assert.rejects(mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: { ca: h.ssl('orders').ca } }), /MG_CLIENT_CERT_MISSING/);
    const warns = serverLog.lines.slice(before).filter((l) => l.level === 'warn');
    const denied = warns.find((l) => l.code === 'MG_POLICY_DENIED');
    assert.ok(denied !== undefined, serverLog.text());
    assert.equal(denied.identity, STANDARD_WORKLOADS.staging);
    assert.equal(denied.engine, 'mysql');
    assert.match(String(denied.peer), /^127\.0\.0\.1:\d+$/);
    assert.match(denied.message, /^refused a MySQL login: \[MG_POLICY_DENIED\]/);
    const missing = warns.find((l) => l.code === 'MG_CLIENT_CERT_MISSING');
    assert.ok(missing !== undefined, serverLog.text());
    assert.equal(missing.identity, null);
    const secret = (await readFile(roleFile('admin'), 'utf8')).trim();
    assert.ok(!serverLog.text().includes(secret), 'the admin password never reaches the log');
  });
});
