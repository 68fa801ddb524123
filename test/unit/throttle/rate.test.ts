/**
 * The per-key token bucket behind per-identity issue rates, on a frozen clock: a burst of
 * `perMinute`, then one token every 60/perMinute s, keys apart, and a refusal that says how
 * long until the next token.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenBuckets } from '../../../src/throttle/index.ts';

describe('token buckets', () => {
  it('allows a burst of perMinute, then refuses with the time to the next token', () => {
    const limiter = tokenBuckets({ perMinute: 6 });
    const t0 = 1_000_000;
    for (let i = 0; i < 6; i++) assert.deepEqual(limiter.take('a', t0), { allowed: true }, `take ${i}`);
    assert.deepEqual(limiter.take('a', t0), { allowed: false, retryAfterMs: 10_000 });
    assert.deepEqual(limiter.take('a', t0 + 4_000), { allowed: false, retryAfterMs: 6_000 });
    assert.deepEqual(limiter.take('a', t0 + 10_000), { allowed: true });
    assert.deepEqual(limiter.take('a', t0 + 10_000), { allowed: false, retryAfterMs: 10_000 });
  });

  it('a refused take costs nothing, and a full bucket does not grow past its burst', () => {
    const limiter = tokenBuckets({ perMinute: 2 });
    const t0 = 5_000;
    assert.equal(limiter.take('a', t0).allowed, true);
    assert.equal(limiter.take('a', t0).allowed, true);
    for (let i = 0; i < 100; i++) assert.equal(limiter.take('a', t0 + 1).allowed, false);
    assert.equal(limiter.take('a', t0 + 30_000).allowed, true, 'refusals did not push the next token back');
    // An hour idle refills to the burst, not to 120.
    const later = t0 + 3_600_000;
    assert.equal(limiter.take('a', later).allowed, true);
    assert.equal(limiter.take('a', later).allowed, true);
    assert.equal(limiter.take('a', later).allowed, false);
  });

  it('keys have buckets of their own', () => {
    const limiter = tokenBuckets({ perMinute: 1 });
    assert.equal(limiter.take('a', 0).allowed, true);
    assert.equal(limiter.take('a', 0).allowed, false);
    assert.equal(limiter.take('b', 0).allowed, true);
  });

  it('forgets idle full buckets, so memory follows the keys active now', () => {
    const limiter = tokenBuckets({ perMinute: 60 });
    for (let i = 0; i < 5000; i++) limiter.take(`old${i}`, 0);
    // A minute later those are full again, and new keys arriving push them out.
    for (let i = 0; i < 5000; i++) limiter.take(`new${i}`, 61_000);
    assert.ok(limiter.size <= 5000 + 1, String(limiter.size));
    // A bucket still short of tokens is kept: forgetting it would hand out a new burst.
    const busy = tokenBuckets({ perMinute: 1 });
    busy.take('hot', 0);
    for (let i = 0; i < 5000; i++) busy.take(`k${i}`, 1000);
    assert.equal(busy.take('hot', 2000).allowed, false);
  });

  it('refuses nonsense limits', () => {
    assert.throws(() => tokenBuckets({ perMinute: 0 }), TypeError);
    assert.throws(() => tokenBuckets({ perMinute: 1.5 }), TypeError);
  });
});
