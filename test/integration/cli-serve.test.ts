/**
 * `meshgate serve` as a real process: it starts from a config file, serves a real client,
 * stops on SIGTERM with the audit trail flushed and intact, and refuses a bad config with
 * one clear error and a non-zero exit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import { verifyAuditFile } from '../../src/audit/verify.ts';
import { startHarness, STANDARD_WORKLOADS, MARIADB, TRUST_DOMAIN, type Harness } from '../helpers/meshgate.ts';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { REDIS_URL, serviceMissing } from '../helpers/services.ts';

const missing = await serviceMissing('mariadb');
const redisMissing = await serviceMissing('redis');

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function meshgate(args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('meshgate serve (process)', { skip: missing }, () => {
  // The harness provides CA, certificates, database, accounts and policy; its own in-process
  // meshgate is not used here.
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'serve', workloads: STANDARD_WORKLOADS });
  });
  after(async () => h?.stop());

  /** A config file for the harness's CA, policy and role accounts, with `extra` sections. */
  const writeConfig = async (file: string, auditFile: string, extra: Record<string, unknown> = {}) => {
    const roles: Record<string, unknown> = {};
    for (const account of h.provisioned.accounts.values()) {
      await writeFile(join(h.dir, `${account.role}.pw`), account.password, { mode: 0o600 });
      roles[account.role] = { user: account.user, password: { file: `${account.role}.pw` } };
    }
    await writeFile(
      file,
      stringify({
        listener: { port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key' } },
        trust: { bundles: ['ca/bundle.pem'], trustDomains: [TRUST_DOMAIN] },
        upstream: { host: MARIADB.host, port: MARIADB.port, roles },
        policy: { dir: 'policy' },
        audit: { file: auditFile },
        ...extra,
      }),
    );
  };

  /** `meshgate serve` as a process, once it says where it listens. */
  const serve = async (config: string) => {
    const child = meshgate(['serve', '--config', config]);
    const stderr: string[] = [];
    child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
    // meshgate's log: JSON lines on stdout.
    const log: string[] = [];
    child.stdout.on('data', (d: Buffer) => log.push(d.toString()));
    let port = 0;
    for await (const line of createInterface({ input: child.stdout })) {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (match) {
        port = Number(match[1]);
        break;
      }
    }
    assert.ok(port > 0, `meshgate did not start: ${stderr.join('')}${log.join('')}`);
    return { child, port, stderr, log };
  };

  it('serves clients and stops cleanly on SIGTERM with the audit flushed', async () => {
    const auditFile = join(h.dir, 'serve-audit.jsonl');
    const config = join(h.dir, 'serve.yaml');
    await writeConfig(config, auditFile);
    const { child, port, stderr, log } = await serve(config);
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'u', database: h.database, ssl: h.ssl('orders') });
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
    assert.equal(rows[0]!.r, h.roles.rw);
    await conn.end();
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, stderr.join(''));
    assert.equal(stderr.join(''), '', 'nothing on stderr: the log is on stdout');
    const lines = log.join('').trimEnd().split('\n').map((line) => JSON.parse(line) as { level: string; message: string; time: string });
    assert.ok(lines.every((line) => typeof line.time === 'string' && ['info', 'warn', 'error'].includes(line.level)), 'every stdout line is a JSON log entry');
    assert.deepEqual(lines.slice(-2).map((line) => line.message), ['shutting down: no new connections; open sessions and calls may finish', 'meshgate stopped']);
    const verdict = await verifyAuditFile(auditFile);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.events, 4, 'the policy put in force at start, then connection, statement and session end are on disk');
    assert.ok(!log.join('').includes(h.provisioned.accounts.get(h.roles.rw)!.password), 'the log never shows a password');
  });

  it('reloads its service classes\' limits on SIGHUP, and keeps them when the new file is wrong', async () => {
    const config = join(h.dir, 'hup.yaml');
    const write = (throttle: unknown) => writeConfig(config, join(h.dir, 'hup-audit.jsonl'), { throttle });
    // A bucket that refills once an hour: what it holds is all there is until the reload.
    const perHour = (burst: number) => ({ classes: { default: { rate: { perSecond: 1 / 3600, burst } } } });
    await write(perHour(2));
    const { child, port, log } = await serve(config);
    try {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'u', database: h.database, ssl: h.ssl('orders') });
      const select = () => conn.query('SELECT 1').then(() => 'ok', (error: { errno: number }) => String(error.errno));
      try {
        assert.deepEqual([await select(), await select(), await select()], ['ok', 'ok', '1226']);
        const logged = async (pattern: RegExp) => {
          for (let i = 0; i < 100 && !pattern.test(log.join('')); i++) await new Promise((resolve) => setTimeout(resolve, 50));
          assert.match(log.join(''), pattern);
        };
        await writeFile(config, 'throttle: [this is not a config\n');
        child.kill('SIGHUP');
        await logged(/SIGHUP: kept the limits in force/);
        assert.equal(await select(), '1226', 'a file that does not load changes nothing');
        await write({ classes: { default: { rate: { perSecond: 1000 } } } });
        child.kill('SIGHUP');
        await logged(/service class limits reloaded: default/);
        assert.deepEqual([await select(), await select(), await select()], ['ok', 'ok', 'ok']);
      } finally {
        await conn.end();
      }
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('reloads its policy directory on SIGHUP: a valid version is taken, a broken one refused and the last good one kept', async () => {
    const config = join(h.dir, 'hup-policy.yaml');
    const policyDir = join(h.dir, 'policy-hup');
    await mkdir(policyDir, { recursive: true });
    const original = await readFile(join(h.dir, 'policy', 'policy.yaml'), 'utf8');
    await writeFile(join(policyDir, 'policy.yaml'), original);
    await writeConfig(config, join(h.dir, 'hup-policy-audit.jsonl'), { policy: { dir: 'policy-hup', watch: false } });
    const { child, port, log } = await serve(config);
    const logged = async (pattern: RegExp) => {
      for (let i = 0; i < 200 && !pattern.test(log.join('')); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.match(log.join(''), pattern);
    };
    const login = (workload: string) => mysql.createConnection({ host: '127.0.0.1', port, user: 'u', database: h.database, ssl: h.ssl(workload) }).then((c) => c.end().then(() => 'ok'), (e: Error) => e.message);
    try {
      assert.match(await login('analytics'), /^ok$/);
      // The analytics rule's principal changed: without a watch, nothing changes until SIGHUP.
      await writeFile(join(policyDir, 'policy.yaml'), original.replace('/sa/analytics"', '/sa/analytics-v2"'));
      assert.equal(await login('analytics'), 'ok');
      child.kill('SIGHUP');
      await logged(/"message":"policy reloaded","trigger":"signal"/);
      assert.match(await login('analytics'), /MG_POLICY_DENIED/);
      await writeFile(join(policyDir, 'policy.yaml'), 'apiVersion: [not a policy\n');
      child.kill('SIGHUP');
      await logged(/"message":"policy reload refused: the version in force stays","trigger":"signal"/);
      assert.match(await login('analytics'), /MG_POLICY_DENIED/);
      assert.equal(await login('orders'), 'ok', 'the last good version still serves');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('two meshgate processes against one Redis hold one shared limit', { skip: redisMissing }, async () => {
    const prefix = `mgt_serve_${randomBytes(4).toString('hex')}:`;
    const burst = 10;
    const throttle = { shared: { redis: { url: REDIS_URL, keyPrefix: prefix } }, classes: { default: { rate: { perSecond: 1 / 3600, burst } } } };
    const replicas = [] as Awaited<ReturnType<typeof serve>>[];
    try {
      for (const name of ['a', 'b']) {
        const config = join(h.dir, `shared-${name}.yaml`);
        await writeConfig(config, join(h.dir, `shared-${name}-audit.jsonl`), { throttle, state: { replicaId: `replica-${name}` } });
        replicas.push(await serve(config));
      }
      const admitted: number[] = [];
      for (const replica of replicas) {
        const conn = await mysql.createConnection({ host: '127.0.0.1', port: replica.port, user: 'u', database: h.database, ssl: h.ssl('orders') });
        let ok = 0;
        try {
          for (let i = 0; i < burst; i++) ok += await conn.query('SELECT 1').then(() => 1, (error: { errno: number }) => (assert.equal(error.errno, 1226), 0));
        } finally {
          await conn.end();
        }
        admitted.push(ok);
      }
      const total = admitted[0]! + admitted[1]!;
      // Unshared, each process would admit its own burst; the slack is docs/throttling.md's.
      assert.ok(total <= burst + 2 && total >= burst / 2, `admitted ${admitted.join(' + ')} = ${total}, one burst is ${burst}`);
    } finally {
      for (const { child } of replicas) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('refuses an invalid config with one error naming the field, exit code 1', async () => {
    const config = join(h.dir, 'bad.yaml');
    await writeFile(
      config,
      'listener: { port: 3307, tls: { cert: a, key: b } }\ntrust: { bundles: [], trustDomains: [x] }\n' +
        'upstream: { roles: { r: { user: u, password: { env: P } } } }\npolicy: { dir: policy }\naudit: { file: audit.jsonl }\n',
    );
    const child = meshgate(['serve', '--config', config]);
    const stderr: string[] = [];
    child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 1);
    const text = stderr.join('');
    assert.match(text, /\[MG_CONFIG_INVALID\]/);
    assert.match(text, /trust\.bundles/);
    assert.equal(text.trim().split('\n').length, 1, `one line, not a stack trace:\n${text}`);
  });
});
