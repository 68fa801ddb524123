/**
 * SharedBucket's own bookkeeping, with a scripted lease source standing in for the network
 * only (the Redis behaviour is tested against the real server in test/integration/throttle):
 * the provisional first token is repaid, a lease is asked for before the last is spent, an
 * empty Redis bucket stops requests until it refills, and local mode uses 1/N of the rate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leaseSize, localShare, SharedBucket, type LeaseSource } from '../../../src/throttle/shared-bucket.ts';

class Source implements LeaseSource {
  shared = true;
  replicas = 1;
  readonly requests: { want: number; owed: number }[] = [];
  lease(_bucket: SharedBucket, want: number, owed: number): void {
    this.requests.push({ want, owed });
  }
}

function spend(bucket: SharedBucket, now: number, n: number): number {
  let taken = 0;
  for (let i = 0; i < n; i++) {
    bucket.refill(now);
    if (!bucket.ready) break;
    bucket.take();
    taken++;
  }
  return taken;
}

describe('SharedBucket', () => {
  it('lease sizes: 50 ms of the rate or a 20th of the burst, within [1, burst]', () => {
    assert.equal(leaseSize(100, 100), 5);
    assert.equal(leaseSize(1, 100), 5);
    assert.equal(leaseSize(500, 1000), 50);
    assert.equal(leaseSize(0.5, 1), 1);
    assert.equal(leaseSize(10_000, 100), 100);
  });

  it('the first token is provisional, asked for with the first lease, and repaid from it', () => {
    const source = new Source();
    const bucket = new SharedBucket(source, 'class:x', 100, 100, 0);
    assert.equal(spend(bucket, 0, 10), 1, 'one provisional token before Redis answered');
    assert.deepEqual(source.requests, [{ want: 6, owed: 1 }], 'one request at a time: the lease plus the token owed');
    bucket.leased(6, 1, 0);
    assert.equal(bucket.held, 5);
    assert.equal(spend(bucket, 1, 3), 3);
    assert.equal(source.requests.length, 1);
    // Half the lease spent: the next is asked for while tokens remain.
    bucket.refill(1);
    assert.equal(source.requests.length, 2);
    assert.deepEqual(source.requests[1], { want: 5, owed: 0 });
    assert.equal(spend(bucket, 1, 10), 2, 'what is held is spent while the request is out, then nothing');
    assert.equal(bucket.ready, false);
    assert.equal(bucket.waitMs, 1, 'a lease on its way: try again within a round trip');
  });

  it('an empty Redis bucket: no request until it refills, and waitMs says when', () => {
    const source = new Source();
    const bucket = new SharedBucket(source, 'class:x', 10, 10, 0);
    spend(bucket, 0, 1);
    bucket.refill(0);
    assert.deepEqual(source.requests, [{ want: 2, owed: 1 }]);
    bucket.leased(0, 1, 100);
    assert.equal(bucket.held, -1, 'the provisional token is still owed: the next grant pays it');
    bucket.refill(50);
    assert.equal(source.requests.length, 1, 'no request before Redis said a token is there');
    assert.equal(bucket.waitMs, 50);
    bucket.refill(100);
    assert.deepEqual(source.requests[1], { want: 1, owed: 0 });
    bucket.leased(2, 0, 0);
    assert.equal(bucket.held, 1);
  });

  it('a failed request keeps what is owed; local mode spends 1/N of the burst and rate', () => {
    const source = new Source();
    const bucket = new SharedBucket(source, 'class:x', 100, 100, 0);
    bucket.refill(0);
    bucket.failed();
    source.shared = false;
    source.replicas = 4;
    assert.equal(spend(bucket, 0, 1000), 25);
    assert.equal(bucket.waitMs, 40, '25/s: one token every 40 ms');
    assert.equal(spend(bucket, 1000, 1000), 25, 'a second later: the local burst again, refilled at the local rate');
    assert.deepEqual(localShare(100, 3, 4), [25, 1], 'a local burst of 1 at least');
    source.shared = true;
    assert.equal(bucket.held, 1, 'shared again: the provisional token was never spent, still there');
  });

  it('full (forgettable) only when it holds and owes nothing', () => {
    const source = new Source();
    const bucket = new SharedBucket(source, 'identity:c:p', 100, 100, 0);
    assert.equal(bucket.full, false);
    spend(bucket, 0, 1);
    bucket.leased(1, 1, 0);
    assert.equal(bucket.full, true);
    assert.equal(bucket.surrender(), 0);
  });
});
