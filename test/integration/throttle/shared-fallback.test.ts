/**
 * SharedRates when Redis goes away for one replica (a TCP proxy in front of the real Redis is
 * cut or stalled; the server itself is never touched): the replica falls back to local buckets
 * at its share of the rate, says so once in the log with what to check, and goes back to
 * shared mode, said once too, when the proxy passes traffic again.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Logger } from '../../../src/log.ts';
import { SharedRates, type SharedBucket } from '../../../src/throttle/index.ts';
import { dropKeys, REDIS_URL, redisProxy, runPrefix, type RedisProxy } from './redis-fixture.ts';
import { serviceMissing } from '../../helpers/services.ts';

const prefix = runPrefix('shfallback');
const open: SharedRates[] = [];
const proxies: RedisProxy[] = [];

after(async () => {
  await Promise.allSettled(open.map((rates) => rates.close()));
  await Promise.allSettled(proxies.map((proxy) => proxy.close()));
  await dropKeys(prefix);
});

function recordingLogger(): Logger & { lines: { level: string; message: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown> = {}) => lines.push({ level, message, fields });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

async function replica(url: string, id: string, keyPrefix: string, logger?: Logger, timeoutMs = 100): Promise<SharedRates> {
  const rates = await SharedRates.connect({ url, keyPrefix, timeoutMs, replicaId: id, ...(logger === undefined ? {} : { logger }) });
  open.push(rates);
  return rates;
}

async function until(what: string, condition: () => boolean, withinMs: number, poke?: () => void): Promise<void> {
  const end = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > end) assert.fail(`not within ${withinMs} ms: ${what}`);
    poke?.();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Takes what it can for `forMs`, yielding between takes. */
async function drain(bucket: SharedBucket, forMs: number): Promise<number> {
  let admitted = 0;
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    bucket.refill(performance.now());
    if (bucket.ready) {
      bucket.take();
      admitted++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return admitted;
}

describe('SharedRates when Redis is unreachable', { timeout: 30_000, skip: await serviceMissing('redis') }, () => {
  it('cut: falls back to 1/N locally, logged once with what to check; restored: shared again, logged once', async () => {
    const keyPrefix = `${prefix}cut:`;
    const proxy = await redisProxy();
    proxies.push(proxy);
    const log = recordingLogger();
    const other = await replica(REDIS_URL, 'direct', keyPrefix);
    const rates = await replica(proxy.url, 'proxied', keyPrefix, log);
    const mine = rates.bucket('class:c', 1, 100, performance.now());
    const theirs = other.bucket('class:c', 1, 100, performance.now());
    // Both replicas have leased once, so Redis has seen two of them.
    await drain(theirs, 50);
    await drain(mine, 50);
    assert.equal(rates.state.mode, 'shared');
    assert.equal(rates.state.replicas, 2);

    proxy.cut();
    await until('the proxied replica falls back', () => rates.state.mode === 'local', 5_000, () => {
      mine.refill(performance.now());
      if (mine.ready) mine.take();
    });
    // Local: half the burst (two replicas last seen), whatever Redis holds.
    const local = await drain(mine, 300);
    assert.ok(local >= 49 && local <= 51, `local share admitted ${local}, expected 50 (burst 100 / 2 replicas)`);
    await drain(mine, 200);
    const warnings = log.lines.filter((line) => line.level === 'warn');
    assert.equal(warnings.length, 1, 'one line for the fallback, not one per failed request');
    assert.match(warnings[0]!.message, /Redis unreachable.*local/);
    assert.match(String(warnings[0]!.fields['check']), /throttle\.shared\.redis\.url/);
    assert.equal(warnings[0]!.fields['redis'], proxy.url);
    assert.equal(rates.state.fallbacks, 1);

    proxy.restore();
    await until('the replica is back in shared mode', () => rates.state.mode === 'shared', 8_000);
    const infos = log.lines.filter((line) => line.level === 'info');
    assert.equal(infos.length, 1);
    assert.match(infos[0]!.message, /shared across replicas again/);
    assert.equal(rates.state.recoveries, 1);
    // Shared again: tokens come from Redis (the other replica spent some of the burst there).
    const before = rates.state.leases;
    await drain(mine, 100);
    assert.ok(rates.state.leases > before, 'leases are asked of Redis again');
    assert.equal(rates.state.mode, 'shared');
  });

  it('slow Redis (requests time out): falls back too, and recovers once answers come in time', async () => {
    const keyPrefix = `${prefix}slow:`;
    const proxy = await redisProxy();
    proxies.push(proxy);
    const log = recordingLogger();
    const rates = await replica(proxy.url, 'slow', keyPrefix, log, 50);
    const mine = rates.bucket('class:s', 1000, 100, performance.now());
    await drain(mine, 30);
    assert.equal(rates.state.mode, 'shared');
    proxy.stall();
    const started = Date.now();
    await until('a timed-out lease falls back', () => rates.state.mode === 'local', 3_000, () => {
      mine.refill(performance.now());
      if (mine.ready) mine.take();
    });
    assert.ok(Date.now() - started < 1_000, 'the 50ms timeout decides, not a TCP timeout');
    assert.match(String(log.lines.find((line) => line.level === 'warn')?.fields['error']), /timed out/i);
    // While stalled, the admit path keeps answering locally, at once.
    const t0 = performance.now();
    mine.refill(performance.now());
    assert.ok(mine.ready);
    mine.take();
    assert.ok(performance.now() - t0 < 5, 'the local path never waits on Redis');
    // The stalled connection's replies were dropped; ioredis reconnects or a probe succeeds once traffic passes.
    proxy.restore();
    await until('back to shared', () => rates.state.mode === 'shared', 8_000);
    assert.equal(rates.state.fallbacks, 1);
    assert.equal(log.lines.filter((line) => line.level === 'warn').length, 1);
  });

  it('a Redis never reached: starts local at the full rate (replicas unknown), logged, and keeps trying', async () => {
    const proxy = await redisProxy();
    proxies.push(proxy);
    proxy.cut();
    const log = recordingLogger();
    const rates = await replica(proxy.url, 'never', `${prefix}never:`, log);
    assert.equal(rates.state.mode, 'local');
    assert.equal(rates.state.replicas, 1);
    const bucket = rates.bucket('class:n', 1, 20, performance.now());
    assert.equal(await drain(bucket, 100), 20, 'the full burst: one replica as far as it knows');
    assert.equal(log.lines.filter((line) => line.level === 'warn').length, 1);
    proxy.restore();
    await until('shared once Redis answers', () => rates.state.mode === 'shared', 8_000);
  });
});
