/**
 * `meshgate serve --workers 2` as a real process tree: one port, two workers each a replica of
 * its own (leases under its own owner, its own hash-chained audit log), one scrape showing
 * every worker, SIGHUP reaching both, a killed worker started again with its leases cleaned
 * up, a SIGTERM draining all of it, a TLS session resumed on whichever worker a client
 * reaches, and a start one worker cannot make stopping all of them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { verifyAuditFile } from '../../src/audit/verify.ts';
import { openEmbeddedStore } from '../../src/store/index.ts';
import { cleanup } from '../helpers/cleanup.ts';
import { existingAccounts, MARIADB, RUN_ID, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, writeServeConfig, type Harness } from '../helpers/meshgate.ts';
import { killAll, startServe, type ServeProcess } from '../helpers/serve-process.ts';
import { serviceMissing } from '../helpers/services.ts';

const missing = await serviceMissing('mariadb');
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const REPLICA = `mgt-workers-${RUN_ID}`;
const WORKLOADS = { ...STANDARD_WORKLOADS, ops: `spiffe://${TRUST_DOMAIN}/ns/ops/sa/admin` };

const until = async (check: () => boolean | Promise<boolean>, what: string, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

const scrape = (port: number, accept?: string) =>
  new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', timeout: 10_000, headers: accept === undefined ? {} : { accept } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET /metrics: ${res.statusCode} ${text}`))));
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
    req.end();
  });

/** POST /v1/policy/reload as the ops admin. */
const adminReload = (port: number, h: Harness) => {
  const pems = h.ssl('ops');
  return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/policy/reload', ...pems, agent: false, headers: { 'content-type': 'application/json', 'content-length': '2' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end('{}');
  });
};

/** The per-worker values of one sample, e.g. meshgate_logins_total{engine="mysql",outcome="success"}. */
const perWorker = (text: string, name: string, labels: string) => {
  const values = new Map<string, number>();
  for (const match of text.matchAll(new RegExp(`^${name}\\{${labels},worker="(\\d+)"\\} (\\S+)$`, 'gm'))) values.set(match[1]!, Number(match[2]));
  return values;
};

describe('meshgate serve --workers (processes)', { skip: missing, timeout: 240_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ name: 'workers', workloads: WORKLOADS, credentials: 'dynamic' });
  });
  after(() =>
    cleanup(
      killAll,
      async () => {
        // Whatever a failed run left: the accounts the workers' leases name.
        const store = await openEmbeddedStore(join(h.dir, 'state'));
        try {
          const admin = await mysql.createConnection({ host: MARIADB.host, port: MARIADB.port, user: MARIADB.user, password: MARIADB.password });
          try {
            for (const user of await existingAccounts((await store.listLeases()).map((lease) => lease.username))) await admin.query('DROP USER IF EXISTS ?@?', [user, '%']);
          } finally {
            await admin.end();
          }
        } finally {
          await store.close();
        }
      },
      () => h?.stop(),
    ),
  );

  const writeConfig = (name: string, extra: Record<string, unknown> = {}) =>
    writeServeConfig(h, name, {
      state: { embedded: { dir: 'state' }, replicaId: REPLICA },
      policy: { dir: 'policy', watch: false },
      audit: { file: `${name}-audit.jsonl` },
      metrics: { listen: '127.0.0.1:0' },
      admin: { host: '127.0.0.1', port: 0, principals: [WORKLOADS.ops] },
      shutdown: { gracePeriod: '2s' },
      ...extra,
    });
  const login = (port: number, workload = 'orders') => mysql.createConnection({ host: '127.0.0.1', port, user: 'u', database: h.database, ssl: h.ssl(workload) });
  const logOf = (proc: ServeProcess, message: RegExp) => proc.log().filter((line) => message.test(String(line['message'])));

  it('serves one port from two workers, each a replica of its own, and drains them all on SIGTERM', async () => {
    const config = await writeConfig('two');
    const proc = await startServe(config, {}, { args: ['--workers', '2'] });
    const listening = logOf(proc, /^meshgate: listening on 127\.0\.0\.1:\d+ \(mysql\) with 2 workers$/);
    assert.equal(listening.length, 1, 'the primary says it listens once, when both workers do');
    const workers = listening[0]!['workers'] as { worker: number; pid: number }[];
    assert.deepEqual(workers.map((w) => w.worker), [1, 2]);
    assert.equal(new Set(workers.map((w) => w.pid)).size, 2);
    assert.equal(logOf(proc, /^meshgate worker \d of 2: serving 127\.0\.0\.1:/).length, 2);
    assert.ok(proc.metricsPort !== null);

    // Connections are handed to the workers in turn: six sessions, three each.
    const open: mysql.Connection[] = [];
    let secondsLeases: string[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const conn = await login(proc.port);
        open.push(conn);
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
        assert.equal(rows[0]!.r, h.roles.rw);
      }
      const store = await openEmbeddedStore(join(h.dir, 'state'));
      try {
        const active = (await store.listLeases()).filter((lease) => lease.state === 'active' && lease.owner.startsWith(REPLICA));
        assert.deepEqual([...new Set(active.map((lease) => lease.owner))].sort(), [`${REPLICA}-w1`, `${REPLICA}-w2`], 'each worker holds leases under its own name');
        secondsLeases = active.filter((lease) => lease.owner === `${REPLICA}-w2`).map((lease) => lease.id);
      } finally {
        await store.close();
      }

      // Any scrape shows both workers; the logins add up to what the client did.
      const text = await scrape(proc.metricsPort!);
      assert.match(text, /^meshgate_workers\{state="answered"\} 2$/m);
      const logins = perWorker(text, 'meshgate_logins_total', 'engine="mysql",outcome="success"');
      assert.deepEqual([...logins.keys()].sort(), ['1', '2']);
      assert.equal(logins.get('1')! + logins.get('2')!, 6);
      assert.equal(text.match(/^# TYPE meshgate_logins_total counter$/gm)?.length, 1);
      const openMetrics = await scrape(proc.metricsPort!, 'application/openmetrics-text; version=1.0.0');
      assert.match(openMetrics, /^meshgate_logins_total\{engine="mysql",outcome="success",worker="2"\} \d+$/m);
      assert.ok(openMetrics.endsWith('# EOF\n'));

      // SIGHUP to the primary reloads the policy in every worker.
      const policyFile = join(h.dir, 'policy', 'policy.yaml');
      await writeFile(policyFile, `${await readFile(policyFile, 'utf8')}\n# reloaded by the workers test\n`);
      proc.child.kill('SIGHUP');
      const reloadedBy = (trigger: string) => new Set(logOf(proc, /^policy reloaded$/).filter((line) => line['trigger'] === trigger).map((line) => line['worker']));
      await until(() => reloadedBy('signal').size === 2, 'both workers reloaded the policy on SIGHUP');
      // The admin API reaches one worker; the policy it reloads reaches both.
      await writeFile(policyFile, `${await readFile(policyFile, 'utf8')}\n# and again through the admin API\n`);
      assert.ok(proc.adminPort !== null);
      const answer = await adminReload(proc.adminPort!, h);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      await until(() => reloadedBy('admin').size === 2, 'both workers reloaded the policy the admin API asked for');
    } finally {
      await Promise.all(open.map((conn) => conn.end().catch(() => undefined)));
    }

    // A worker that dies is started again, and its leases from before are revoked at its start.
    const second = workers.find((w) => w.worker === 2)!;
    process.kill(second.pid, 'SIGKILL');
    await until(() => logOf(proc, /^worker 2 is serving again$/).length === 1, 'worker 2 serves again');
    assert.equal(logOf(proc, /^worker 2 ended \(SIGKILL\); starting it again in \d+ ms$/).length, 1);
    const afterRestart = await openEmbeddedStore(join(h.dir, 'state'));
    try {
      const leases = await afterRestart.listLeases();
      assert.ok(secondsLeases.length > 0);
      assert.deepEqual(secondsLeases.map((id) => leases.find((lease) => lease.id === id)?.state), secondsLeases.map(() => 'revoked'), "the killed worker's leases are revoked when it starts again");
    } finally {
      await afterRestart.close();
    }
    const again: mysql.Connection[] = [];
    try {
      for (let i = 0; i < 4; i++) again.push(await login(proc.port));
      for (const conn of again) await conn.query('SELECT 1');
    } finally {
      await Promise.all(again.map((conn) => conn.end()));
    }

    proc.child.kill('SIGTERM');
    const { code } = await proc.exited;
    assert.equal(code, 0, proc.stderr());
    assert.equal(proc.log().at(-1)!['message'], 'meshgate stopped');
    assert.deepEqual(proc.log().at(-1)!['workers'], { 1: 0, 2: 0 });

    // Two chains, each intact; together they hold every session, each exactly once.
    let connections = 0;
    for (const index of [1, 2]) {
      const file = join(h.dir, `two-audit.w${index}.jsonl`);
      const verdict = await verifyAuditFile(file);
      assert.equal(verdict.ok, true, `worker ${index}'s audit log verifies`);
      const events = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { type?: string });
      connections += events.filter((line) => line.type === 'connection').length;
    }
    assert.equal(connections, 10, 'six sessions before the kill and four after, one connection event each (the killed worker wrote its own before it died)');
    const store = await openEmbeddedStore(join(h.dir, 'state'));
    try {
      const left = (await store.listLeases()).filter((lease) => lease.owner.startsWith(REPLICA) && lease.state !== 'revoked');
      assert.deepEqual(left, [], 'every session lease of every worker is revoked');
      assert.deepEqual(await existingAccounts((await store.listLeases()).map((lease) => lease.username)), [], 'and its account dropped');
    } finally {
      await store.close();
    }
  });

  it('resumes a TLS session on whichever worker the client reaches', async () => {
    const config = await writeConfig('resume', { listener: { host: '127.0.0.1', port: 0, tls: { cert: 'server/server.crt', key: 'server/server.key', mode: 'first-byte' } } });
    const proc = await startServe(config, {}, { args: ['--workers', '2'] });
    const handshake = (session?: Buffer) =>
      new Promise<{ reused: boolean; ticket: Buffer | undefined }>((resolve, reject) => {
        let ticket: Buffer | undefined;
        const socket = tlsConnect({ host: '127.0.0.1', port: proc.port, ...h.ssl('orders'), servername: 'localhost', minVersion: 'TLSv1.3', ...(session === undefined ? {} : { session }) });
        socket.on('session', (value: Buffer) => (ticket ??= value));
        socket.on('error', reject);
        // The greeting: meshgate has accepted the session (and sent its tickets before it).
        socket.once('data', () => {
          const reused = socket.isSessionReused();
          // The tickets may be read after the greeting: wait for one a little.
          const done = () => {
            clearTimeout(timer);
            socket.destroy();
            resolve({ reused, ticket });
          };
          const timer = setTimeout(done, 2_000);
          if (ticket !== undefined || session !== undefined) done();
          else socket.once('session', done);
        });
      });
    try {
      const first = await handshake();
      assert.ok(first.ticket !== undefined, 'meshgate issued a session ticket');
      // Round robin: these four alternate between the two workers.
      const resumed = [];
      for (let i = 0; i < 4; i++) resumed.push((await handshake(first.ticket)).reused);
      assert.deepEqual(resumed, [true, true, true, true]);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });

  it('stops cleanly on a SIGTERM that comes while the workers are still starting', async () => {
    const config = await writeConfig('early');
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    // As soon as both workers exist: they take seconds to load, so the stop reaches them
    // before they listen for it, and again once they say they are up.
    const children = () => readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    await until(() => children().length === 2, 'the primary forked both workers', 20_000);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    assert.equal(code, 0, out);
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as { message: string; worker?: number; workers?: Record<string, number> });
    assert.ok(!lines.some((line) => /listening on/.test(line.message)), 'never announced as listening');
    assert.deepEqual(lines.at(-1), { ...lines.at(-1)!, message: 'meshgate stopped', workers: { 1: 0, 2: 0 } });
  });

  it('stops every worker and exits 1 when a worker cannot start', async () => {
    // A port nothing listens on: no worker can log in upstream at start.
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const config = await writeConfig('down', { upstream: { host: '127.0.0.1', port: closed, credentials: { admin: { user: h.adminUser, password: { file: 'secrets/admin' } } } } });
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    assert.equal(code, 1);
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as { message: string });
    assert.ok(lines.some((line) => /^meshgate did not start: worker \d could not start/.test(line.message)), out);
    assert.ok(!lines.some((line) => /listening on/.test(line.message)));
  });
});
