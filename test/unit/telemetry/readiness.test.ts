/**
 * /readyz's judgement on its own: the upstream check runs at most once per interval and only
 * when a probe asks after the last success aged (a login through the upstream counts as one);
 * a real JSONL audit sink whose disk fails makes it not ready, naming the audit, until the
 * disk comes back; and the sink's back-pressure time grows only while it holds sessions.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { openJsonlAuditSink, type AuditFileHandle } from '../../../src/audit/jsonl-sink.ts';
import { Readiness } from '../../../src/telemetry/metrics/index.ts';
import type { UpstreamCheck, UpstreamProblem } from '../../../src/upstream-checks.ts';
import { statementEvent, tempDir } from '../audit/helpers.ts';

const PROBLEM: UpstreamProblem = { upstream: 'mariadb', address: '127.0.0.1:1', account: null, code: 'MG_UPSTREAM_UNAVAILABLE', upstreamError: 'ECONNREFUSED', problem: 'MariaDB at 127.0.0.1:1 does not answer', fix: '', transient: true };

function countedCheck(): UpstreamCheck & { runs: number; down: boolean } {
  const check = {
    runs: 0,
    down: false,
    async run() {
      check.runs++;
      return check.down ? [PROBLEM] : [];
    },
  };
  return check;
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail(`never: ${what}`);
}

describe('readiness', () => {
  it('checks the upstream at most once per interval, and not at all while logins go through', async () => {
    let now = 0;
    const check = countedCheck();
    const readiness = new Readiness({ policyLoaded: () => true, auditRefusal: () => null, upstreamChecks: () => [check], upstreamFreshMs: 1000, now: () => now });
    readiness.serving();
    assert.deepEqual(await readiness.report(), { ready: true, notReady: {} });
    assert.equal(check.runs, 1, 'the first probe waits for a first check');
    for (let i = 0; i < 5; i++) await readiness.report();
    assert.equal(check.runs, 1, 'fresh: no check per probe');
    now = 1500;
    check.down = true;
    assert.equal((await readiness.report()).ready, true, 'stale: answered from the last result while a check runs');
    await until(async () => !(await readiness.report()).ready, 'the failed check is reported');
    for (let i = 0; i < 5; i++) await readiness.report();
    assert.equal(check.runs, 2, 'a failing upstream is checked once per interval too');
    assert.match((await readiness.report()).notReady['upstream']!, /MG_UPSTREAM_UNAVAILABLE.*does not answer/);
    readiness.upstreamReached();
    check.down = false;
    assert.deepEqual(await readiness.report(), { ready: true, notReady: {} });
    now = 2000;
    await readiness.report();
    assert.equal(check.runs, 2, 'a login through the upstream counts as a check');
  });

  it('is not ready without a policy, naming every problem at once', async () => {
    const readiness = new Readiness({
      policyLoaded: () => {
        throw new Error('no');
      },
      auditRefusal: () => ({ code: 'MG_AUDIT_UNAVAILABLE', message: 'disk full' }),
      upstreamChecks: () => [],
      upstreamFreshMs: 1000,
    });
    readiness.serving();
    assert.deepEqual(await readiness.report(), { ready: false, notReady: { policy: 'no policy is loaded', audit: 'MG_AUDIT_UNAVAILABLE: disk full' } });
  });

  it('is not ready while starting nor once draining, and a draining replica checks no upstream', async () => {
    const check = countedCheck();
    let trust: string | null = null;
    const readiness = new Readiness({ policyLoaded: () => true, auditRefusal: () => null, trustProblem: () => trust, upstreamChecks: () => [check], upstreamFreshMs: 0 });
    const starting = await readiness.report();
    assert.equal(starting.ready, false);
    assert.match(starting.notReady['lifecycle']!, /starting.*--wait-for-upstream/);
    readiness.serving();
    assert.deepEqual(await readiness.report(), { ready: true, notReady: {} });
    trust = "meshgate's certificate expired";
    assert.deepEqual(await readiness.report(), { ready: false, notReady: { trust: "meshgate's certificate expired" } });
    trust = null;
    readiness.draining();
    const runs = check.runs;
    const draining = await readiness.report();
    assert.deepEqual(Object.keys(draining.notReady), ['lifecycle']);
    assert.match(draining.notReady['lifecycle']!, /shutting down \(SIGTERM\).*shutdown\.gracePeriod/);
    readiness.serving();
    assert.equal((await readiness.report()).ready, false, 'draining is for good');
    assert.equal(check.runs, runs, 'no upstream connection for a probe of a replica on its way out');
  });
});

describe('readiness and a real audit sink', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => (tmp = await tempDir()));
  after(() => tmp?.cleanup());

  it('turns not ready while the audit file cannot be written, and ready when it can again', async () => {
    let failing = false;
    const sink = await openJsonlAuditSink(tmp.file('outage.jsonl'), {
      batchDelayMs: 0,
      retryDelayMs: { initial: 5, max: 10 },
      onUnavailable: () => undefined,
      onAvailable: () => undefined,
      openFile: async (path): Promise<AuditFileHandle> => {
        const real = await open(path, 'a');
        return {
          write: async (buffer, offset, length) => {
            if (failing) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
            return real.write(buffer, offset, length);
          },
          datasync: () => real.datasync(),
          close: () => real.close(),
        };
      },
    });
    try {
      const readiness = new Readiness({ policyLoaded: () => true, auditRefusal: () => sink.refusal, upstreamChecks: () => [], upstreamFreshMs: 1000 });
      readiness.serving();
      assert.equal((await readiness.report()).ready, true);
      failing = true;
      sink.record(statementEvent(1));
      await until(() => sink.refusal !== null, 'the sink refuses');
      const report = await readiness.report();
      assert.equal(report.ready, false);
      assert.match(report.notReady['audit']!, /^MG_AUDIT_UNAVAILABLE: .*ENOSPC/);
      assert.ok(sink.pending >= 1, 'the event waits in the queue');
      failing = false;
      await until(async () => (await readiness.report()).ready, 'ready again once the audit records');
    } finally {
      await sink.close();
    }
  });

  it('counts back-pressure time only while sessions are held', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sink = await openJsonlAuditSink(tmp.file('backlog.jsonl'), {
      highWaterEvents: 10,
      maxWaitMs: 10_000,
      batchDelayMs: 0,
      openFile: async (path): Promise<AuditFileHandle> => {
        const real = await open(path, 'a');
        return { write: async (b, o, l) => (await gate, real.write(b, o, l)), datasync: () => real.datasync(), close: () => real.close() };
      },
    });
    try {
      assert.equal(sink.backPressureSeconds, 0);
      for (let i = 0; i < 10; i++) sink.record(statementEvent(i));
      assert.equal(sink.backlogged, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(sink.backPressureSeconds >= 0.04, `held ${sink.backPressureSeconds} s`);
      release();
      await sink.flush();
      assert.equal(sink.backlogged, false);
      const held = sink.backPressureSeconds;
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(sink.backPressureSeconds, held, 'no longer growing once drained');
    } finally {
      await sink.close();
    }
  });
});
