/**
 * The start-up wait for upstreams, on a fake clock: transient problems are retried with
 * backoff until the deadline and logged once; a refused login stops at once; the thrown
 * error carries the problem's code. And the Google check, with a token source that fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FirestoreConfig } from '../../src/engines/firestore/start.ts';
import { firestoreUpstreamCheck } from '../../src/engines/firestore/upstream-check.ts';
import { checkUpstreams, upstreamWait, type UpstreamProblem } from '../../src/upstream-checks.ts';
import { captureLog } from '../helpers/log.ts';

const down: UpstreamProblem = {
  upstream: 'mariadb',
  address: '127.0.0.1:3306',
  account: null,
  code: 'MG_UPSTREAM_UNAVAILABLE',
  upstreamError: 'ECONNREFUSED',
  problem: 'nothing listens on 127.0.0.1:3306 (ECONNREFUSED)',
  fix: 'start MariaDB',
  transient: true,
};
const refused: UpstreamProblem = { ...down, account: 'meshgate_admin', code: 'MG_UPSTREAM_AUTH_FAILED', upstreamError: 1045, problem: 'refused', fix: 'fix the password', transient: false };

function fakeClock() {
  let now = 0;
  const sleeps: number[] = [];
  return { now: () => now, sleep: async (ms: number) => void (sleeps.push(ms), (now += ms)), sleeps };
}

describe('checkUpstreams', () => {
  it('returns at once when every upstream answers, logging nothing', async () => {
    const { log, lines } = captureLog();
    await checkUpstreams([{ run: async () => [] }], { log, waitMs: 0 });
    assert.deepEqual(lines, []);
  });

  it('without a wait: fails at the first problem with its code, one error line, and says how to wait', async () => {
    const { log, lines } = captureLog();
    await assert.rejects(checkUpstreams([{ run: async () => [down] }], { log, waitMs: 0 }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_UNAVAILABLE');
      assert.equal(error.message, 'nothing listens on 127.0.0.1:3306 (ECONNREFUSED): start MariaDB (if it is still starting, `meshgate serve --wait-for-upstream 60s` waits for it)');
      return true;
    });
    assert.deepEqual(lines.map((l) => [l.level, l.code, l.upstreamError]), [['error', 'MG_UPSTREAM_UNAVAILABLE', 'ECONNREFUSED']]);
  });

  it('with a wait: retries with growing, capped backoff until the upstream answers; one warn line, then info', async () => {
    const { log, lines } = captureLog();
    const clock = fakeClock();
    let calls = 0;
    await checkUpstreams([{ run: async () => (++calls < 8 ? [down] : []) }], { log, waitMs: 60_000, ...clock });
    assert.deepEqual(clock.sleeps, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert.deepEqual(lines.map((l) => l.level), ['warn', 'info']);
    assert.match(lines[0]!.message, /waiting for it \(--wait-for-upstream\), 60 s left/);
  });

  it('with a wait: gives up at the deadline, saying how long it waited', async () => {
    const { log, lines } = captureLog();
    const clock = fakeClock();
    await assert.rejects(checkUpstreams([{ run: async () => [down] }], { log, waitMs: 3000, ...clock }), /still not answering after --wait-for-upstream 3s: nothing listens/);
    assert.ok(clock.now() >= 3000 && clock.now() <= 3000 + 250);
    assert.deepEqual(lines.map((l) => l.level), ['warn', 'error']);
  });

  it('a refused login never waits: an answer that will not change', async () => {
    const { log, lines } = captureLog();
    const clock = fakeClock();
    await assert.rejects(checkUpstreams([{ run: async () => [down] }, { run: async () => [refused] }], { log, waitMs: 60_000, ...clock }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_AUTH_FAILED');
      assert.match(error.message, /^2 upstream checks failed: nothing listens .*; refused: fix the password$/);
      return true;
    });
    assert.deepEqual(clock.sleeps, []);
    assert.deepEqual(lines.map((l) => [l.level, l.account]), [['error', null], ['error', 'meshgate_admin']]);
  });
});

describe('upstreamWait', () => {
  it('gives the engines of one start one budget: the second gets only what the first left', async () => {
    const { log } = captureLog();
    const clock = fakeClock();
    const wait = upstreamWait({ log, waitMs: 10_000, ...clock });
    // The first engine's upstream answers after 6 s; the second's never does.
    await wait.check([{ run: async () => (clock.now() < 6000 ? [down] : []) }]);
    const startedSecond = clock.now();
    await assert.rejects(wait.check([{ run: async () => [down] }]), /still not answering after --wait-for-upstream 10s/);
    assert.ok(clock.now() - startedSecond <= 4000, `the second waited ${clock.now() - startedSecond} ms of a budget with 4000 left`);
    assert.ok(clock.now() >= 10_000);
  });
});

describe('Firestore upstream check for Google', () => {
  const config: FirestoreConfig = { host: '127.0.0.1', port: 0, tls: 'mtls', trustedHops: [], project: 'p', maxMessageBytes: 1024, timeouts: { handshake: '10s', request: '10s', idle: '5m', drain: '10s' }, upstream: { google: { endpoint: 'https://firestore.googleapis.com' } } };

  it("names meshgate's own credentials and the fix when no token can be had", async () => {
    const check = firestoreUpstreamCheck(config, { googleToken: async () => Promise.reject(new Error('Could not load the default credentials')) });
    const [problem, ...rest] = await check.run();
    assert.deepEqual(rest, []);
    assert.equal(problem?.code, 'MG_UPSTREAM_AUTH_FAILED');
    assert.equal(problem?.address, 'https://firestore.googleapis.com');
    assert.match(problem!.problem, /cannot get a Google access token with its own credentials \(Could not load the default credentials\)/);
    assert.match(problem!.fix, /roles\/iam\.serviceAccountTokenCreator/);
  });

  it('passes when a token comes back', async () => {
    assert.deepEqual(await firestoreUpstreamCheck(config, { googleToken: async () => 'ya29.token' }).run(), []);
  });

  it('a token source that hangs is bounded', async () => {
    const check = firestoreUpstreamCheck(config, { googleToken: () => new Promise(() => {}), timeoutMs: 20 });
    const [problem] = await check.run();
    assert.match(problem!.problem, /no answer within 40 ms/);
  });
});
