/**
 * Metrics on the admin port of a meshgate with dynamic credentials (no plain listener): a
 * verified client certificate scrapes /metrics over HTTPS, a caller without one gets 401, and
 * /readyz needs none. The lease and pool gauges read the real lease manager and pool: a mysql2
 * session makes a lease (created, active) and holds an upstream connection, then returns it.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { prometheusMissing, promtoolCheck } from '../../helpers/prometheus.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)\{(.*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = match[2]!.split(/,(?=[a-z_]+=")/);
    if (wanted.length === present.length && wanted.every((w) => present.includes(w))) return Number(match[3]);
  }
  return undefined;
}

describe('metrics on the admin port', { skip: missing }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      name: 'metrics_admin',
      workloads: STANDARD_WORKLOADS,
      credentials: 'dynamic',
      config: (c) => {
        c.admin = { host: '127.0.0.1', port: 0, principals: [] };
        c.metrics = {};
      },
    });
  });
  after(() => cleanup(() => h?.stop()));

  const get = (path: string, workload: string | null) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const client = workload === null ? {} : { cert: h.ssl(workload).cert, key: h.ssl(workload).key };
      const req = https.get({ host: 'localhost', port: h.meshgate.adminPort!, path, ca: h.ssl('orders').ca, ...client, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
    });

  it('serves /metrics to a verified certificate, /readyz to anyone, and no plain listener', async () => {
    assert.equal(h.meshgate.metricsPort, null);
    assert.equal((await get('/metrics', null)).status, 401);
    const ready = await get('/readyz', null);
    assert.deepEqual([ready.status, JSON.parse(ready.body)], [200, { ready: true }]);
    assert.equal((await get('/metrics', 'analytics')).status, 200, 'any identity the trust bundle vouches for, not only admins');
  });

  it('reads the real lease manager and upstream pool when scraped', async () => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
    await conn.query('SELECT 1');
    let { status, body } = await get('/metrics', 'orders');
    assert.equal(status, 200);
    assert.equal(sample(body, 'meshgate_leases', { state: 'active', purpose: 'session' }), 1);
    assert.equal(sample(body, 'meshgate_lease_operations_total', { operation: 'create', outcome: 'completed' }), 1);
    assert.equal(sample(body, 'meshgate_upstream_connections', { engine: 'mysql', state: 'in_use' }), 1);
    assert.equal(sample(body, 'meshgate_upstream_pool_events_total', { engine: 'mysql', event: 'opened' }), 1);
    await conn.end();
    for (let i = 0; i < 100 && sample(body, 'meshgate_upstream_connections', { engine: 'mysql', state: 'in_use' }) !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      ({ body } = await get('/metrics', 'orders'));
    }
    assert.equal(sample(body, 'meshgate_upstream_connections', { engine: 'mysql', state: 'in_use' }), 0);
    assert.equal(sample(body, 'meshgate_sessions_total', { engine: 'mysql', outcome: 'client_closed' }), 1);
    if (prometheusMissing() === false) {
      const lint = promtoolCheck(body);
      assert.equal(lint.code, 0, lint.output);
    }
  });
});
