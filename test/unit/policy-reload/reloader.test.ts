/**
 * The reloader every trigger goes through, over a real policy directory: a valid new version
 * is swapped in whole and recorded; an invalid one, or one a check refuses, is recorded as
 * refused and the version in force stays; the same content is `unchanged`; reloads run one
 * at a time; sessions are judged after the swap. And the directory watch notices edits.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AuditRecorder, type AuditEvent, type PolicyEvent } from '../../../src/audit/index.ts';
import { mgError } from '../../../src/errors/index.ts';
import { silentLogger } from '../../../src/log.ts';
import { loadPolicyDir, PolicyParseCache, SwappablePolicy, type CompiledPolicy } from '../../../src/policy/index.ts';
import { PolicyReloader, watchPolicyDirectory } from '../../../src/policy-reload/index.ts';
import { EventMetrics, subscribe } from '../../../src/telemetry/metrics/events.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';

const policyText = (role: string) => `apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: shop }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["td/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: ["shop"], role: ${role} } }]
`;

describe('PolicyReloader', () => {
  let dir: string;
  let events: AuditEvent[];
  let policy: SwappablePolicy;
  let judged: CompiledPolicy[];
  let refuseClasses: boolean;
  let reloader: PolicyReloader;
  const file = () => join(dir, 'shop.yaml');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-reloader-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    await writeFile(file(), policyText('shop_rw'));
    events = [];
    judged = [];
    refuseClasses = false;
    policy = new SwappablePolicy(await loadPolicyDir(dir));
    const cache = new PolicyParseCache();
    reloader = new PolicyReloader({
      policy,
      candidate: { source: dir, load: () => loadPolicyDir(dir, { cache }) },
      check: () => {
        if (refuseClasses) throw mgError('MG_POLICY_INVALID', 'the policy names service class(es) nightly, which throttle.classes does not define');
      },
      reevaluate: (next) => (judged.push(next), 2),
      audit: new AuditRecorder(memoryAuditSink(events)),
      log: silentLogger,
    });
  });

  const policyEvents = () => events.filter((e): e is PolicyEvent => e.type === 'policy');

  it('swaps in a changed, valid version whole, judges sessions after the swap, and records it', async () => {
    const before = policy.current();
    await writeFile(file(), policyText('shop_ro'));
    const result = await reloader.reload({ trigger: 'signal' });
    assert.equal(result.outcome, 'completed');
    const now = policy.current();
    assert.notEqual(now.version, before.version);
    assert.deepEqual(result, { outcome: 'completed', version: now.version, previousVersion: before.version, rules: 1, sessionsEnded: 2 });
    assert.deepEqual(judged, [now]);
    assert.equal(now.evaluate({ spiffeId: 'spiffe://td/ns/shop/sa/orders', trustDomain: 'td', namespace: 'shop', serviceAccount: 'orders', principal: 'td/ns/shop/sa/orders' }, { engine: 'mysql', database: 'shop' }).role, 'shop_ro');
    assert.deepEqual(
      policyEvents().map(({ time: _t, ...e }) => e),
      [{ type: 'policy', engine: null, sessionId: null, action: 'reload', outcome: 'completed', trigger: 'signal', identity: null, policyVersion: now.version, previousVersion: before.version, rules: 1, source: dir, sessionsEnded: 2, error: null }],
    );
  });

  it('the same content is unchanged: nothing swapped, judged or recorded', async () => {
    const before = policy.current();
    const result = await reloader.reload({ trigger: 'watch' });
    assert.deepEqual(result, { outcome: 'unchanged', version: before.version, rules: 1 });
    assert.equal(policy.current(), before);
    assert.deepEqual(judged, []);
    assert.deepEqual(policyEvents(), []);
  });

  it('a version that does not load is refused with its reason; the one in force stays', async () => {
    const before = policy.current();
    await writeFile(file(), policyText('shop`rw'));
    const result = await reloader.reload({ trigger: 'watch' });
    assert.equal(result.outcome, 'refused');
    assert.equal(policy.current(), before);
    assert.deepEqual(judged, []);
    const [event] = policyEvents();
    assert.equal(event?.outcome, 'refused');
    assert.equal(event?.policyVersion, null);
    assert.equal(event?.previousVersion, before.version);
    assert.equal(event?.error?.code, 'MG_POLICY_INVALID');
    assert.match(event?.error?.message ?? '', /spec\.rules\[0\]\.to\[0\]\.mariadb\.role: "shop`rw" must be a MariaDB role name/);
  });

  it('a version a check refuses (a service class the config lacks) is refused too', async () => {
    refuseClasses = true;
    await writeFile(file(), policyText('shop_ro'));
    const before = policy.current();
    const result = await reloader.reload({ trigger: 'admin' });
    assert.equal(result.outcome === 'refused' ? result.error.message : '', 'the policy names service class(es) nightly, which throttle.classes does not define');
    assert.equal(policy.current(), before);
  });

  it('reloads run one at a time, in the order asked', async () => {
    const versions: string[] = [];
    await writeFile(file(), policyText('a1'));
    const first = reloader.reload({ trigger: 'signal' });
    const second = reloader.reload({ trigger: 'signal' });
    const results = await Promise.all([first, second]);
    for (const result of results) versions.push(result.outcome);
    assert.deepEqual(versions, ['completed', 'unchanged']);
    assert.equal(policyEvents().length, 1);
  });

  it('metrics count reloads by trigger and outcome, and dry runs by rule, from the audit channels', async () => {
    const metrics = new EventMetrics();
    const unsubscribe = subscribe(metrics, (error) => assert.fail(String(error)));
    try {
      await writeFile(file(), policyText('m1'));
      await reloader.reload({ trigger: 'signal' });
      await writeFile(file(), 'not: [a policy');
      await reloader.reload({ trigger: 'watch' });
      assert.equal(metrics.reloads.cell('signal', 'completed').value, 1);
      assert.equal(metrics.reloads.cell('watch', 'refused').value, 1);
      const recorder = new AuditRecorder(memoryAuditSink([]));
      const dryRun = { rule: 'watch/no-staging', decision: 'deny' as const, reason: 'would be denied by rule watch/no-staging' };
      const identity = { spiffeId: 'spiffe://td/ns/staging/sa/a', trustDomain: 'td', namespace: 'staging', serviceAccount: 'a', principal: 'td/ns/staging/sa/a', authMethod: 'mtls' as const, certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' } };
      const session = recorder.openSession({ engine: 'mysql', sessionId: 's1', identity, role: 'r', rule: 'shop/orders', upstreamConnectionId: 1, startedAt: Date.now(), policyVersion: 'v1', dryRun });
      for (let i = 0; i < 3; i++) session.statement({ command: 'query', verb: 'SELECT', statement: 'SELECT 1', traceId: '0'.repeat(32), database: 'shop', decision: 'allow', rowsReturned: 1, rowsAffected: 0, durationUs: 10, outcome: 'completed', error: null });
      assert.equal(metrics.dryRuns.cell('mysql', 'deny', 'watch/no-staging').value, 3);
    } finally {
      unsubscribe();
    }
  });
});

describe('watchPolicyDirectory', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-watch-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const changes = (pollMs: number) => {
    let count = 0;
    let notify: (() => void) | null = null;
    const watch = watchPolicyDirectory({
      dir,
      debounceMs: 50,
      pollMs,
      onChange: () => {
        count++;
        notify?.();
      },
      onError: (error) => assert.fail(error.message),
    });
    const next = () => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no change noticed within 5 s')), 5000);
      notify = () => (clearTimeout(timer), resolve());
    });
    return { watch, next, count: () => count };
  };

  it('a burst of edits is one change', async () => {
    const { watch, next, count } = changes(0);
    try {
      const noticed = next();
      for (let i = 0; i < 5; i++) await writeFile(join(dir, 'a.yaml'), `# edit ${i}\n`);
      await noticed;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(count(), 1);
    } finally {
      watch.close();
    }
  });

  it('a file replaced through a renamed link, as a ConfigMap update does, is noticed', async () => {
    const { watch, next } = changes(0);
    try {
      const noticed = next();
      await writeFile(join(dir, '.tmp.yaml'), '# new\n');
      const { rename } = await import('node:fs/promises');
      await rename(join(dir, '.tmp.yaml'), join(dir, 'b.yaml'));
      await noticed;
    } finally {
      watch.close();
    }
  });
});
