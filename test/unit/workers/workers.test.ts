/**
 * serve --workers, the pure parts: how many workers, what each gets for itself (replica name,
 * audit log, anchor), and one exposition made of every worker's metrics.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Gauge, Registry } from 'prom-client';
import { CounterFamily, HistogramFamily, register } from '../../../src/telemetry/metrics/cells.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { logLayout } from '../../../src/audit/log-files.ts';
import { parseWorkers, workerConfig, workerFile, workersProblem } from '../../../src/workers/plan.ts';
import { familiesOf, mergeWorkerMetrics, renderFamilies, workersFamily } from '../../../src/workers/metrics-merge.ts';
import { PROMTOOL, promtoolCheck } from '../../helpers/prometheus.ts';

describe('--workers', () => {
  it('takes a count from 1 to 64 or auto (one per core), and says what it takes otherwise', () => {
    assert.equal(parseWorkers(undefined, 8), 1);
    assert.equal(parseWorkers('4', 2), 4);
    assert.equal(parseWorkers('auto', 6), 6);
    assert.equal(parseWorkers('auto', 500), 64);
    for (const bad of ['0', '-1', '65', '2.5', 'two', '', ' 2']) {
      assert.throws(() => parseWorkers(bad, 2), /--workers takes a number of processes from 1 to 64, or auto \(one per core: 2 here\)/, bad);
    }
  });

  it("gives each worker its own audit log beside the configured one, never taken for a rotated file", () => {
    assert.equal(workerFile('/var/log/meshgate/audit.jsonl', 2), '/var/log/meshgate/audit.w2.jsonl');
    assert.equal(workerFile('audit', 1), 'audit.w1');
    assert.equal(workerFile('/a.b/c.d.jsonl', 3), '/a.b/c.d.w3.jsonl');
    const base = logLayout('/var/log/meshgate/audit.jsonl');
    const worker = logLayout(workerFile('/var/log/meshgate/audit.jsonl', 12));
    assert.equal(base.rotatedNumber(worker.activeName), null, "a worker's log is not a rotated file of the configured one");
    assert.equal(worker.rotatedNumber(worker.rotatedName(3)), 3, "a worker's log rotates on its own");
  });

  it('names each worker as a replica of its own, with its own log and anchor, and changes nothing else', () => {
    const config = configSchema.parse({
      listener: { port: 0, tls: { cert: 'c', key: 'k' } },
      trust: { bundles: ['b'], trustDomains: ['example.org'] },
      upstream: { host: '127.0.0.1', port: 3306, roles: { r: { user: 'u', password: { file: 'p' } } } },
      policy: { dir: 'policy' },
      audit: { file: '/logs/audit.jsonl' },
    });
    const second = workerConfig(config, 2, 'node-a');
    assert.equal(second.state.replicaId, 'node-a-w2', 'the host name, without a replicaId');
    assert.equal(second.audit.file, '/logs/audit.w2.jsonl');
    assert.equal(second.audit.anchorId, undefined, 'the default anchor id already names the replica and the file');
    assert.deepEqual({ ...second, state: config.state, audit: config.audit }, config);
    const named = workerConfig({ ...config, state: { ...config.state, replicaId: 'pod-7' }, audit: { ...config.audit, anchorId: 'orders' } }, 1, 'node-a');
    assert.equal(named.state.replicaId, 'pod-7-w1');
    assert.equal(named.audit.anchorId, 'orders-w1');
    assert.notEqual(workerConfig(config, 1).state.replicaId, workerConfig(config, 2).state.replicaId);
  });

  it('gives each worker its own policy clone, and refuses a launched emulator it cannot share', () => {
    const base = {
      listener: { port: 0, tls: { cert: 'c', key: 'k' } },
      trust: { bundles: ['b'], trustDomains: ['example.org'] },
      upstream: { host: '127.0.0.1', port: 3306, roles: { r: { user: 'u', password: { file: 'p' } } } },
    };
    const fromGit = configSchema.parse({ ...base, policy: { git: { url: 'ssh://git@host/org/policy.git', workDir: '/var/lib/meshgate/policy-git' } } });
    assert.equal(workerConfig(fromGit, 2, 'h').policy.git?.workDir, '/var/lib/meshgate/policy-git/w2');
    assert.deepEqual({ ...workerConfig(fromGit, 2, 'h').policy.git, workDir: fromGit.policy.git!.workDir }, fromGit.policy.git);
    const fromDir = configSchema.parse({ ...base, policy: { dir: 'policy' } });
    assert.deepEqual(workerConfig(fromDir, 2, 'h').policy, fromDir.policy, 'a policy directory is only read: shared');
    const launched = configSchema.parse({ ...base, policy: { dir: 'policy' }, firestore: { project: 'p', upstream: { launchEmulator: {} } } });
    assert.match(workersProblem(launched, 2) ?? '', /one emulator per worker.*firestore\.upstream\.emulator: HOST:PORT/);
    assert.equal(workersProblem(launched, 1), null);
    const named = configSchema.parse({ ...base, policy: { dir: 'policy' }, firestore: { project: 'p', upstream: { emulator: '127.0.0.1:8080' } } });
    assert.equal(workersProblem(named, 4), null);
  });
});

/** A registry made as meshgate's is: its counter and histogram (with an exemplar), prom-client's gauges. */
function workerRegistry(logins: number, version: string, latency: number): Registry {
  const registry = new Registry();
  const counter = new CounterFamily('meshgate_logins_total', 'Logins.', ['outcome']);
  counter.cell('success').value += logins;
  register(registry, counter);
  new Gauge({ name: 'meshgate_policy_info', help: 'The policy in force.', labelNames: ['version'], registers: [registry] }).set({ version }, 1);
  new Gauge({ name: 'meshgate_lag', help: 'Not known yet.', registers: [registry] }).set(Number.NaN);
  const histogram = new HistogramFamily('meshgate_statement_seconds', 'Statement latency.', ['engine'], [0.001, 0.01]);
  histogram.observe(histogram.cell('mysql'), latency, 'a'.repeat(32));
  register(registry, histogram);
  return registry;
}

describe("one exposition of every worker's metrics", () => {
  it('keeps every sample, labelled by worker: counters sum in PromQL, gauges stay true per worker', async () => {
    const merged = mergeWorkerMetrics([
      { index: 1, families: await familiesOf(workerRegistry(3, 'v1', 0.0005)) },
      { index: 2, families: await familiesOf(workerRegistry(4, 'v2', 0.005)) },
    ]);
    const text = await renderFamilies([...merged, workersFamily(2, 0)], false);
    assert.match(text, /^meshgate_logins_total\{outcome="success",worker="1"\} 3$/m);
    assert.match(text, /^meshgate_logins_total\{outcome="success",worker="2"\} 4$/m);
    assert.match(text, /^meshgate_policy_info\{version="v1",worker="1"\} 1$/m);
    assert.match(text, /^meshgate_policy_info\{version="v2",worker="2"\} 1$/m, 'not 2: a gauge is never summed');
    assert.match(text, /^meshgate_lag\{worker="2"\} Nan$/m, 'NaN as prom-client writes it');
    assert.match(text, /^meshgate_statement_seconds_bucket\{engine="mysql",le="0\.001",worker="1"\} 1$/m);
    assert.match(text, /^meshgate_statement_seconds_bucket\{engine="mysql",le="0\.001",worker="2"\} 0$/m);
    assert.match(text, /^meshgate_statement_seconds_count\{engine="mysql",worker="2"\} 1$/m);
    assert.match(text, /^meshgate_workers\{state="answered"\} 2$/m);
    assert.equal(text.match(/^# TYPE meshgate_logins_total counter$/gm)?.length, 1, 'one family, not one per worker');
    if (existsSync(PROMTOOL)) assert.equal(promtoolCheck(text).code, 0, promtoolCheck(text).output);
  });

  it('renders OpenMetrics with the exemplars, as one process would', async () => {
    const merged = mergeWorkerMetrics([
      { index: 1, families: await familiesOf(workerRegistry(1, 'v1', 0.0005)) },
      { index: 2, families: await familiesOf(workerRegistry(1, 'v1', 0.0005)) },
    ]);
    const text = await renderFamilies([...merged, workersFamily(1, 1)], true);
    assert.match(text, /^# TYPE meshgate_logins counter$/m);
    assert.match(text, /^meshgate_logins_total\{outcome="success",worker="2"\} 1$/m);
    assert.match(text, new RegExp(`^meshgate_statement_seconds_bucket\\{engine="mysql",le="0\\.001",worker="1"\\} 1 # \\{trace_id="${'a'.repeat(32)}"\\} 0\\.0005 \\d+`, 'm'));
    assert.match(text, /^meshgate_workers\{state="silent"\} 1$/m);
    assert.ok(text.endsWith('# EOF\n'));
    // Rendering twice gives the same text: the render renames nothing it was given.
    assert.equal(await renderFamilies([...merged, workersFamily(1, 1)], true), text);
  });
});
