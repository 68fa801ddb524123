/**
 * Service classes through meshgate in front of the real MariaDB, with mysql2: the class a
 * policy rule names limits its callers' statements and sessions, a refusal is MariaDB's own
 * "resource limit" error (1226, SQLSTATE 42000) naming the class and the limit, a class that
 * waits queues statements until its bucket refills, and another class's callers are untouched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { StatementEvent } from '../../../src/audit/index.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { DEFAULT_POLICY, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

// analytics runs as batch; orders, naming no class, as the default class (interactive).
const POLICY = DEFAULT_POLICY.replace('    - id: analytics\n', '    - id: analytics\n      serviceClass: batch\n');

describe('service classes through meshgate (MariaDB)', { skip: missing }, () => {
  let h: Harness;
  const open: mysql.Connection[] = [];
  before(async () => {
    assert.notEqual(POLICY, DEFAULT_POLICY);
    h = await startHarness({
      name: 'throttle',
      workloads: STANDARD_WORKLOADS,
      policy: POLICY,
      config: (config) => {
        config.throttle = {
          defaultClass: 'interactive',
          classes: {
            interactive: { priority: 100, rate: { perSecond: 10_000 } },
            batch: { priority: 0, rate: { perSecond: 2, burst: 5 }, sessions: 2, overLimit: 'refuse' },
          },
        };
        config.metrics = { listen: '127.0.0.1:0' };
      },
    });
  });
  after(() => cleanup(...open.map((c) => () => c.end()), () => h?.stop()));

  const connect = async (workload: 'orders' | 'analytics') => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload) });
    open.push(c);
    return c;
  };

  it('refuses a batch caller past its burst with 1226, while an interactive caller keeps going', async () => {
    const batch = await connect('analytics');
    const orders = await connect('orders');
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(
        await batch.query('SELECT 1').then(
          () => 'ok',
          (error: { errno: number; sqlState: string; message: string }) => `${error.errno} ${error.sqlState} ${error.message}`,
        ),
      );
      await orders.query('SELECT 1'); // never refused: another class
    }
    assert.deepEqual(outcomes.slice(0, 5), ['ok', 'ok', 'ok', 'ok', 'ok'], 'the burst passes');
    const refused = outcomes.slice(5);
    assert.ok(refused.every((o) => o.startsWith('1226 42000 [MG_THROTTLED]')), refused.join('\n'));
    assert.match(refused[0]!, /batch/, 'the refusal names the class');
    const events = (await h.readAudit()).filter((e) => e['type'] === 'statement') as unknown as StatementEvent[];
    const denied = events.filter((e) => e.decision === 'deny' && e.error?.code === 'MG_THROTTLED');
    assert.equal(denied.length, 3, 'each refusal is on the record');
    assert.ok(denied.every((e) => e.identity.spiffeId === STANDARD_WORKLOADS.analytics));
    // Each class's counts, as Prometheus scrapes them.
    const text = await (await fetch(`http://127.0.0.1:${h.meshgate.metricsPort}/metrics`)).text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('meshgate_throttle_refused_total{class="batch",reason="limit"}'), 3, text);
    assert.equal(value('meshgate_throttle_refused_total{class="interactive",reason="limit"}'), 0);
    assert.ok(value('meshgate_throttle_admitted_total{class="batch"}') >= 6, 'the login and five statements');
    assert.ok(value('meshgate_throttle_admitted_total{class="interactive"}') >= 9, 'the login and eight statements');
  });

  it('holds a batch identity to its open sessions, refusing the next login with 1226', async () => {
    // One batch session is open from the test before; one more fits.
    await connect('analytics');
    await assert.rejects(connect('analytics'), (error: { errno: number; message: string }) => error.errno === 1226 && /MG_THROTTLED/.test(error.message) && /session/.test(error.message));
    await connect('orders'); // the other class still logs in
  });
});

describe('a service class that waits (MariaDB)', { skip: missing }, () => {
  let h: Harness;
  let conn: mysql.Connection | undefined;
  before(async () => {
    h = await startHarness({
      name: 'throttlewait',
      workloads: STANDARD_WORKLOADS,
      config: (config) => {
        config.throttle = { classes: { default: { rate: { perSecond: 5, burst: 1 }, overLimit: { wait: { queue: 4, timeout: '2s' } } } } };
      },
    });
    conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
  });
  after(() => cleanup(() => conn?.end(), () => h?.stop()));

  it('queues a statement until its bucket refills instead of refusing it', async () => {
    const started = Date.now();
    for (let i = 0; i < 4; i++) await conn!.query('SELECT 1');
    const elapsed = Date.now() - started;
    // One token at once, then one every 200 ms: the fourth statement waits about 600 ms.
    assert.ok(elapsed >= 450, `waited ${elapsed} ms`);
    assert.ok(elapsed < 2000, `waited ${elapsed} ms`);
    const events = (await h.readAudit()).filter((e) => e['type'] === 'statement' && e['verb'] === 'SELECT');
    assert.ok(events.length >= 4 && events.every((e) => e['decision'] === 'allow'));
    // Each event says how long its statement waited for the class: the first not at all.
    const waits = events.slice(-4).map((e) => (e['throttleWaitMs'] as number | undefined) ?? 0);
    assert.equal(waits[0], 0);
    assert.ok(waits.slice(1).every((ms) => ms >= 100 && ms <= 400), `waits ${JSON.stringify(waits)}`);
  });
});

describe('the upstream connection budget (MariaDB)', { skip: missing }, () => {
  let h: Harness;
  const open: mysql.Connection[] = [];
  before(async () => {
    h = await startHarness({
      name: 'throttlebudget',
      workloads: STANDARD_WORKLOADS,
      policy: POLICY,
      config: (config) => {
        config.throttle = {
          defaultClass: 'interactive',
          classes: { interactive: { priority: 100 }, batch: { priority: 0 } },
          upstream: { connections: 6, reserved: { interactive: 2 } },
        };
      },
    });
  });
  after(() => cleanup(...open.map((c) => () => c.end()), () => h?.stop()));

  it('holds while one batch identity tries 500 sessions: it gets what is not reserved, interactive still logs in', async () => {
    const outcomes = { ok: 0, busy: 0, other: [] as string[] };
    for (let wave = 0; wave < 10; wave++) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('analytics') }).then(
            (c) => {
              open.push(c);
              outcomes.ok++;
            },
            (error: { errno: number; message: string }) => {
              if (error.errno === 1203 && /MG_UPSTREAM_BUSY/.test(error.message)) outcomes.busy++;
              else outcomes.other.push(`${error.errno} ${error.message}`);
            },
          ),
        ),
      );
    }
    assert.deepEqual(outcomes, { ok: 4, busy: 496, other: [] }, 'six connections less the two reserved for interactive');
    for (let i = 0; i < 2; i++) {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
      open.push(c);
      await c.query('SELECT 1');
    }
    await assert.rejects(
      mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') }),
      (error: { errno: number }) => error.errno === 1203,
      'the whole budget is in use',
    );
    // A session that ends gives its connection back.
    await open.shift()!.end();
    const again = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('analytics') });
    open.push(again);
  });
});

describe('logins per identity (MariaDB)', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      name: 'throttlelogins',
      workloads: STANDARD_WORKLOADS,
      config: (config) => {
        // Three logins an hour per identity: a reconnect storm is refused before MariaDB sees it.
        config.throttle = { classes: { default: { perIdentity: { logins: { perSecond: 1 / 3600, burst: 3 } } } } };
      },
    });
  });
  after(() => cleanup(() => h?.stop()));

  it('refuses an identity past its login rate with 1226, another identity still logs in', async () => {
    const login = (workload: 'orders' | 'analytics') => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload) });
    for (let i = 0; i < 3; i++) await (await login('orders')).end();
    await assert.rejects(login('orders'), (error: { errno: number; message: string }) => error.errno === 1226 && /MG_THROTTLED/.test(error.message) && /logins\/s/.test(error.message));
    await (await login('analytics')).end();
    const refused = (await h.readAudit()).filter((e) => e['type'] === 'connection' && (e['error'] as { code?: string } | null)?.code === 'MG_THROTTLED');
    assert.equal(refused.length, 1, 'the refused login is on the record');
  });
});

describe('priority when classes wait for the same connections (MariaDB)', { skip: missing }, () => {
  let h: Harness;
  const open: mysql.Connection[] = [];
  before(async () => {
    h = await startHarness({
      name: 'throttleprio',
      workloads: STANDARD_WORKLOADS,
      policy: POLICY,
      config: (config) => {
        const wait = { wait: { queue: 50, timeout: '20s' } };
        config.throttle = {
          defaultClass: 'interactive',
          classes: { interactive: { priority: 100, overLimit: wait }, batch: { priority: 0, overLimit: wait } },
          upstream: { connections: 3 },
        };
      },
    });
  });
  after(() => cleanup(...open.map((c) => () => c.end()), () => h?.stop()));

  const login = (workload: 'orders' | 'analytics') =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload), connectTimeout: 30_000 }).then((c) => {
      open.push(c);
      return c;
    });

  it('a waiting interactive login gets the next free connection before batch logins queued earlier', async () => {
    const held = [await login('analytics'), await login('analytics'), await login('analytics')];
    const order: string[] = [];
    // Eight batch logins queue first, then one interactive.
    const batch = Array.from({ length: 8 }, (_, i) => login('analytics').then((c) => (order.push(`batch${i}`), c)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const interactive = login('orders').then((c) => (order.push('interactive'), c));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(order, [], 'everyone waits while the budget is full');
    // Connections free one at a time: the first goes to the higher class.
    await held.shift()!.end();
    await interactive;
    assert.deepEqual(order, ['interactive']);
    for (const c of held) await c.end();
    await (await interactive).end();
    const batches = await Promise.all(batch.slice(0, 3));
    assert.equal(batches.length, 3);
    assert.equal(order[0], 'interactive');
    assert.deepEqual(order.slice(1, 4).sort(), ['batch0', 'batch1', 'batch2'], 'then batch, first come first served');
    for (const c of batches) await c.end();
    // The rest get in as those before them leave.
    await Promise.all(batch.slice(3).map((pending) => pending.then((c) => c.end())));
    assert.equal(order.length, 9);
  });
});
