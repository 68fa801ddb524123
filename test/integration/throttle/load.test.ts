/**
 * Throttling under load on loopback (issue 14's load test): an `interactive` identity runs
 * point selects alone, then while a `batch` identity floods meshgate from eight connections.
 * The batch class is held to its rate (its statements wait in their queue), and the
 * interactive latency stays where it was. Prints p50/p99 of both phases and batch's rate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { cleanup } from '../../helpers/cleanup.ts';
import { DEFAULT_POLICY, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');
const POLICY = DEFAULT_POLICY.replace('    - id: analytics\n', '    - id: analytics\n      serviceClass: batch\n');
const BATCH_RATE = 200;
const PHASE_MS = 3000;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

describe('throttling under load (MariaDB)', { skip: missing }, () => {
  let h: Harness;
  const open: mysql.Connection[] = [];
  before(async () => {
    h = await startHarness({
      name: 'throttleload',
      workloads: STANDARD_WORKLOADS,
      policy: POLICY,
      setupSql: ['CREATE TABLE {db}.items (id INT PRIMARY KEY, qty INT)', 'INSERT INTO {db}.items VALUES (1, 3)'],
      config: (config) => {
        config.audit = { ...config.audit, durability: 'buffered' };
        config.throttle = {
          defaultClass: 'interactive',
          classes: {
            interactive: { priority: 100 },
            batch: { priority: 0, rate: { perSecond: BATCH_RATE, burst: 20 }, concurrency: 4, overLimit: { wait: { queue: 64, timeout: '10s' } } },
          },
        };
      },
    });
  });
  after(() => cleanup(...open.map((c) => () => c.end()), () => h?.stop()));

  const connect = async (workload: 'orders' | 'analytics') => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl(workload) });
    open.push(c);
    return c;
  };

  /** Point selects back to back until `until`; each one's latency in ms. */
  const run = async (conn: mysql.Connection, until: number, latencies: number[] | null) => {
    let count = 0;
    while (Date.now() < until) {
      const started = process.hrtime.bigint();
      await conn.query('SELECT qty FROM items WHERE id = 1');
      latencies?.push(Number(process.hrtime.bigint() - started) / 1e6);
      count++;
    }
    return count;
  };

  it('holds batch to its rate while interactive keeps its latency', async () => {
    const interactive = await Promise.all([connect('orders'), connect('orders')]);
    const batch = await Promise.all(Array.from({ length: 8 }, () => connect('analytics')));
    for (const c of [...interactive, ...batch.slice(0, 1)]) await c.query('SELECT 1'); // warm up

    const alone: number[] = [];
    let until = Date.now() + PHASE_MS;
    await Promise.all(interactive.map((c) => run(c, until, alone)));

    const loaded: number[] = [];
    const started = Date.now();
    until = started + PHASE_MS;
    const [, batchCounts] = await Promise.all([Promise.all(interactive.map((c) => run(c, until, loaded))), Promise.all(batch.map((c) => run(c, until, null)))]);
    const batchRate = (batchCounts.reduce((a, b) => a + b, 0) * 1000) / (Date.now() - started);

    alone.sort((a, b) => a - b);
    loaded.sort((a, b) => a - b);
    const report = {
      interactiveAlone: { statements: alone.length, p50: quantile(alone, 0.5), p99: quantile(alone, 0.99) },
      interactiveWithBatch: { statements: loaded.length, p50: quantile(loaded, 0.5), p99: quantile(loaded, 0.99) },
      batchPerSecond: batchRate,
    };
    console.log(`throttle load: ${JSON.stringify(report)}`);
    // The batch class gets its rate (plus its burst), no more; its queue lets it keep close to it.
    assert.ok(batchRate <= BATCH_RATE * 1.15 + 20, `batch ran ${batchRate.toFixed(0)}/s, over its ${BATCH_RATE}/s`);
    assert.ok(batchRate >= BATCH_RATE * 0.6, `batch ran ${batchRate.toFixed(0)}/s, far under its ${BATCH_RATE}/s`);
    // Interactive is not starved: its median barely moves and it still gets most of its throughput.
    assert.ok(report.interactiveWithBatch.p50 <= report.interactiveAlone.p50 * 2 + 1, JSON.stringify(report));
    assert.ok(loaded.length >= alone.length * 0.5, JSON.stringify(report));
  });
});
