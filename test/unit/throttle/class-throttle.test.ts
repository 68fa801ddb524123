/**
 * ClassThrottle on a manual clock: bucket math and burst per class and per identity inside
 * it, concurrency and session slots given back exactly once, refusals that name the class and
 * the limit, and the default class for names no class has.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClassThrottle, createThrottle, admitEverything, isThrottledError, type Admission, type AdmissionRequest } from '../../../src/throttle/index.ts';
import { ManualClock } from './manual-clock.ts';
import { settingsOf } from './settings-fixture.ts';

const A = 'spiffe://cluster.local/ns/shop/sa/a';
const B = 'spiffe://cluster.local/ns/shop/sa/b';
const stmt = (serviceClass: string, principal = A): AdmissionRequest => ({ engine: 'mysql', kind: 'statement', serviceClass, principal });
const session = (serviceClass: string, principal = A): AdmissionRequest => ({ engine: 'mysql', kind: 'session', serviceClass, principal });

function refusal(admission: Admission) {
  assert.equal(admission.admitted, false, 'expected a refusal');
  if (admission.admitted) throw new Error('unreachable');
  assert.ok(isThrottledError(admission.error), String(admission.error));
  return admission.error;
}

describe('ClassThrottle: the synchronous path', () => {
  it('spends the burst at once, then one token per 1/perSecond, with retryAfterMs to the next', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 10, burst: 3 } } } }), { clock });
    for (let i = 0; i < 3; i++) assert.equal(throttle.admit(stmt('default')).admitted, true, `burst ${i}`);
    const error = refusal(throttle.admit(stmt('default')));
    assert.equal(error.code, 'MG_THROTTLED');
    assert.equal(error.limit, 'rate');
    assert.equal(error.serviceClass, 'default');
    assert.equal(error.retryAfterMs, 100);
    assert.match(error.message, /service class "default" is over its rate of 10 statements\/s \(burst 3\): retry in 100 ms/);
    assert.match(error.message, /throttle\.classes\.default\.rate/);
    clock.advance(40);
    assert.equal(refusal(throttle.admit(stmt('default'))).retryAfterMs, 60, 'a refusal took nothing');
    clock.advance(60);
    assert.equal(throttle.admit(stmt('default')).admitted, true);
    assert.equal(throttle.admit(stmt('default')).admitted, false);
    // A long rest refills to the burst, not beyond.
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) assert.equal(throttle.admit(stmt('default')).admitted, true);
    assert.equal(throttle.admit(stmt('default')).admitted, false);
  });

  it('a burst defaults to one second of the rate, and fractional rates refill smoothly', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 0.5 } } } }), { clock });
    assert.equal(throttle.admit(stmt('default')).admitted, true);
    assert.equal(refusal(throttle.admit(stmt('default'))).retryAfterMs, 2000);
    clock.advance(1999);
    assert.equal(throttle.admit(stmt('default')).admitted, false);
    clock.advance(1);
    assert.equal(throttle.admit(stmt('default')).admitted, true);
  });

  it('sessions take no rate tokens; statements and calls do', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 1, burst: 1 } } } }), { clock });
    for (let i = 0; i < 5; i++) assert.equal(throttle.admit(session('default')).admitted, true);
    assert.equal(throttle.admit({ engine: 'firestore', kind: 'call', serviceClass: 'default', principal: A }).admitted, true);
    assert.match(refusal(throttle.admit(stmt('default'))).message, /1 statements\/s/);
  });

  it('per-identity limits inside a class: one identity at its limit leaves the others theirs', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(
      settingsOf({ classes: { default: { rate: { perSecond: 100, burst: 5 }, perIdentity: { rate: { perSecond: 1, burst: 2 }, concurrency: 3 } } } }),
      { clock },
    );
    assert.equal(throttle.admit(stmt('default', A)).admitted, true);
    assert.equal(throttle.admit(stmt('default', A)).admitted, true);
    const error = refusal(throttle.admit(stmt('default', A)));
    assert.equal(error.limit, 'identity-rate');
    assert.equal(error.retryAfterMs, 1000);
    assert.match(error.message, /this identity in service class "default" is over its rate of 1 statements\/s \(burst 2\)/);
    assert.match(error.message, /perIdentity\.rate/);
    // B has a bucket of its own.
    assert.equal(throttle.admit(stmt('default', B)).admitted, true);
    assert.equal(throttle.admit(stmt('default', B)).admitted, true);
    clock.advance(1000);
    assert.equal(throttle.admit(stmt('default', A)).admitted, true, 'A got its token back');
    assert.equal(throttle.admit(stmt('default', B)).admitted, true, 'B refilled on its own');
    // Nothing was released: B now holds its 3 in-flight statements.
    const busy = refusal(throttle.admit(stmt('default', B)));
    assert.equal(busy.limit, 'identity-concurrency');
    assert.match(busy.message, /this identity in service class "default" holds its limit of 3 in-flight statements: wait for its statements to finish, or raise throttle\.classes\.default\.perIdentity\.concurrency/);
  });

  it('the class bucket is shared by its identities', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { rate: { perSecond: 1, burst: 3 }, perIdentity: { rate: { perSecond: 1, burst: 2 } } } } }), { clock });
    assert.equal(throttle.admit(stmt('default', A)).admitted, true);
    assert.equal(throttle.admit(stmt('default', A)).admitted, true);
    assert.equal(throttle.admit(stmt('default', B)).admitted, true);
    const error = refusal(throttle.admit(stmt('default', B)));
    assert.equal(error.limit, 'rate', 'the class is out before B is');
  });

  it('concurrency: a slot is held until release, and a second release gives nothing back twice', () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 2 } } }), { clock: new ManualClock() });
    const first = throttle.admit(stmt('default'));
    const second = throttle.admit(stmt('default'));
    assert.ok(first.admitted && second.admitted);
    const error = refusal(throttle.admit(stmt('default')));
    assert.equal(error.limit, 'concurrency');
    assert.equal(error.retryAfterMs, null, 'a slot held by others frees at no known time');
    assert.match(error.message, /service class "default" holds its limit of 2 in-flight statements/);
    first.release();
    first.release();
    first.release();
    assert.equal(throttle.snapshot()[0]!.inFlight, 1);
    const third = throttle.admit(stmt('default'));
    assert.equal(third.admitted, true);
    assert.equal(throttle.admit(stmt('default')).admitted, false, 'the repeated releases freed one slot, not three');
  });

  it('sessions per class and per identity, named in the refusal', () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { sessions: 3, perIdentity: { sessions: 2 } } } }), { clock: new ManualClock() });
    assert.equal(throttle.admit(session('default', A)).admitted, true);
    assert.equal(throttle.admit(session('default', A)).admitted, true);
    const own = refusal(throttle.admit(session('default', A)));
    assert.equal(own.limit, 'identity-sessions');
    assert.match(own.message, /this identity in service class "default" holds its limit of 2 open sessions: close idle sessions/);
    const b = throttle.admit(session('default', B));
    assert.equal(b.admitted, true);
    assert.equal(refusal(throttle.admit(session('default', B))).limit, 'sessions');
    if (b.admitted) b.release();
    assert.equal(throttle.admit(session('default', B)).admitted, true);
  });

  it('a class no configuration names is limited as the default class', () => {
    const throttle = new ClassThrottle(settingsOf({ defaultClass: 'standard', classes: { standard: { concurrency: 1 }, critical: { priority: 10 } } }), { clock: new ManualClock() });
    assert.equal(throttle.admit(stmt('no-such-class')).admitted, true);
    const error = refusal(throttle.admit(stmt('standard')));
    assert.equal(error.serviceClass, 'standard');
    assert.equal(throttle.admit(stmt('critical')).admitted, true, 'critical has no limit');
  });

  it('a class that waits still answers the synchronous path at once (refused over its limit)', () => {
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { concurrency: 1, overLimit: { wait: { queue: 10, timeout: '1s' } } } } }), { clock: new ManualClock() });
    assert.equal(throttle.admit(stmt('default')).admitted, true);
    assert.equal(refusal(throttle.admit(stmt('default'))).limit, 'concurrency');
  });

  it('without a throttle section nothing is limited and admitEverything is what runs', () => {
    assert.equal(createThrottle(undefined), admitEverything);
    assert.ok(createThrottle({ defaultClass: 'default', classes: { default: { priority: 0, overLimit: 'refuse' } } }) instanceof ClassThrottle);
  });

  it('forgets idle identities, so the map is bounded by the live ones', () => {
    const clock = new ManualClock();
    const throttle = new ClassThrottle(settingsOf({ classes: { default: { perIdentity: { rate: { perSecond: 1000, burst: 1 }, concurrency: 5 } } } }), { clock });
    for (let i = 0; i < 5000; i++) {
      const admission = throttle.admit(stmt('default', `spiffe://cluster.local/ns/n/sa/${i}`));
      assert.ok(admission.admitted);
      admission.release();
      clock.advance(1);
    }
    assert.ok(throttle.snapshot()[0]!.identities < 2100, `identities kept: ${throttle.snapshot()[0]!.identities}`);
  });
});
