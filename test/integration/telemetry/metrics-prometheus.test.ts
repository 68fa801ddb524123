/**
 * Prometheus metrics end to end: meshgate in front of the real MariaDB (through a TCP
 * forwarder the test can cut), real mysql2 clients logging in (allowed, denied by policy,
 * without a certificate) and running statements (allowed, refused by meshgate), and a real
 * Prometheus server scraping meshgate's plain metrics listener; its HTTP API must report what
 * happened, and `promtool check metrics` must find nothing to lint in the exposition.
 * /healthz and /readyz on the same listener: ready, then not (the upstream unreachable, by
 * meshgate's own cached check), then ready again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { prometheusMissing, promtoolCheck, startPrometheus, type PrometheusServer, type Sample } from '../../helpers/prometheus.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';

const missing = (await serviceMissing('mariadb')) || prometheusMissing();

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

const value = (samples: Sample[]): number => samples.reduce((sum, s) => sum + s.value, 0);

describe('Prometheus scraping meshgate', { skip: missing }, () => {
  let proxy: TcpProxy;
  let h: Harness;
  let prometheus: PrometheusServer;
  let port: number;

  before(async () => {
    proxy = await startTcpProxy({ host: MARIADB.host, port: MARIADB.port });
    h = await startHarness({
      name: 'metrics',
      workloads: STANDARD_WORKLOADS,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, qty INT)', 'INSERT INTO {db}.items VALUES (1, 3)'],
      config: (config) => {
        config.upstream.host = '127.0.0.1';
        config.upstream.port = proxy.port;
        config.metrics = { listen: '127.0.0.1:0', upstreamCheckInterval: '1s' };
      },
    });
    port = h.meshgate.metricsPort!;
  });
  after(() => cleanup(() => prometheus?.stop(), () => h?.stop(), () => proxy?.close()));

  const login = (workload: string | null) =>
    mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: workload === null ? { ca: h.ssl('orders').ca } : h.ssl(workload) });

  it('is alive and ready on the plain listener, without a client certificate', async () => {
    assert.equal(typeof port, 'number');
    assert.deepEqual(await get(port, '/healthz'), { status: 200, body: '{"ok":true}\n' });
    const ready = await get(port, '/readyz');
    assert.equal(ready.status, 200, ready.body);
    assert.equal((await get(port, '/v1/leases')).status, 404, 'nothing but the probes and metrics here');
  });

  it('counts logins, failures by code, statements and decisions, as a real Prometheus scrapes them', async () => {
    const orders = await login('orders');
    for (let i = 0; i < 3; i++) await orders.query('SELECT qty FROM items WHERE id = 1');
    await assert.rejects(orders.query('GRANT SELECT ON *.* TO CURRENT_USER()'), /MG_ACCOUNT_CHANGE_REFUSED|account/);
    await orders.end();
    await assert.rejects(login('stranger'), /MG_POLICY_DENIED|denied/i);
    await assert.rejects(login(null));

    prometheus = await startPrometheus(`127.0.0.1:${port}`);
    await prometheus.waitForTarget();
    const logins = await prometheus.waitFor('meshgate_logins_total', (s) => s.length >= 2);
    const byOutcome = Object.fromEntries(logins.map((s) => [s.metric['outcome'], s.value]));
    assert.equal(byOutcome['success'], 1);
    assert.equal(byOutcome['denied'], 1);
    assert.ok((byOutcome['failed'] ?? 0) >= 1, JSON.stringify(byOutcome));
    assert.equal(value(await prometheus.query('meshgate_login_failures_total{engine="mysql",code="MG_POLICY_DENIED"}')), 1);
    assert.ok(value(await prometheus.query('meshgate_login_failures_total{engine="mysql",code="MG_CLIENT_CERT_MISSING"}')) >= 1);
    assert.equal(value(await prometheus.query('meshgate_statement_duration_seconds_count{engine="mysql",verb="SELECT",outcome="completed"}')), 3);
    assert.equal(value(await prometheus.query('meshgate_statement_duration_seconds_count{engine="mysql",verb="GRANT",outcome="denied"}')), 1);
    assert.equal(value(await prometheus.query('meshgate_policy_decisions_total{engine="mysql",decision="allow",rule="writers/orders"}')), 4, 'the login and its three statements');
    assert.equal(value(await prometheus.query('meshgate_policy_decisions_total{engine="mysql",decision="deny",rule="none"}')), 2, 'the stranger and the GRANT');
    assert.equal(value(await prometheus.query('meshgate_sessions_total{engine="mysql",outcome="client_closed"}')), 1);
    const p99 = await prometheus.query('histogram_quantile(0.99, sum by (le) (meshgate_statement_duration_seconds_bucket{verb="SELECT"}))');
    assert.ok(p99.length === 1 && p99[0]!.value > 0 && p99[0]!.value <= 30, `a p99 from the buckets: ${JSON.stringify(p99)}`);
    const build = await prometheus.query('meshgate_build_info');
    assert.equal(build.length, 1);
    assert.equal(build[0]!.metric['node_version'], process.version);
    assert.equal(value(await prometheus.query('meshgate_audit_available')), 1);
    const expiry = await prometheus.query('meshgate_certificate_expiry_timestamp_seconds{certificate="listener"}');
    assert.equal(expiry.length, 1);
    assert.ok(expiry[0]!.value > Date.now() / 1000, 'the listener certificate has not expired');
    assert.ok((await prometheus.query('meshgate_certificate_expiry_timestamp_seconds{certificate="trust_root"}')).length >= 1);
    assert.equal((await prometheus.query('meshgate_policy_info')).length, 1);
    assert.ok(value(await prometheus.query('meshgate_upstream_pool_events_total{event="opened"}')) >= 1);
    // Scraped as OpenMetrics, the SELECTs' latency buckets name a trace the audit recorded for one of them.
    const selects = (await h.readAudit()).filter((e) => e['type'] === 'statement' && e['verb'] === 'SELECT').map((e) => e['traceId']);
    const exemplars = await prometheus.exemplarTraceIds('meshgate_statement_duration_seconds_bucket{verb="SELECT"}');
    assert.ok(exemplars.length >= 1 && exemplars.every((id) => selects.includes(id)), `exemplars ${JSON.stringify(exemplars)} are traces of the SELECTs ${JSON.stringify(selects)}`);
  });

  it('exposes text that promtool check metrics passes, with no identity, statement or trace id in it', async () => {
    const { status, body } = await get(port, '/metrics');
    assert.equal(status, 200);
    const lint = promtoolCheck(body);
    assert.equal(lint.code, 0, lint.output);
    assert.equal(lint.output, '', 'no lint problems');
    for (const secretish of [STANDARD_WORKLOADS.orders, 'SELECT qty', 'CURRENT_USER', 'traceparent']) assert.ok(!body.includes(secretish), `no ${secretish} in the exposition`);
  });

  it('is not ready while the upstream cannot be reached, and ready again when it can', async () => {
    await proxy.stop();
    const deadline = Date.now() + 20_000;
    let ready = await get(port, '/readyz');
    while (ready.status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      ready = await get(port, '/readyz');
    }
    assert.equal(ready.status, 503, ready.body);
    const body = JSON.parse(ready.body) as { ready: boolean; notReady: Record<string, string> };
    assert.equal(body.ready, false);
    assert.deepEqual(Object.keys(body.notReady), ['upstream']);
    assert.match(body.notReady['upstream']!, /MG_UPSTREAM_UNAVAILABLE/);
    assert.equal((await get(port, '/healthz')).status, 200, 'alive all the same');
    await proxy.start();
    while (ready.status !== 200 && Date.now() < deadline + 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      ready = await get(port, '/readyz');
    }
    assert.equal(ready.status, 200, ready.body);
  });
});
