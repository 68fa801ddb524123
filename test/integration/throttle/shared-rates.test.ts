/**
 * SharedRates against the machine's real Redis: two replicas (two instances in one process,
 * then two Node processes) hold one combined rate, not one each; keys expire and are named
 * after the run. Rates are chosen so refill during a test window is a token or two at most:
 * what is counted is the shared burst.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { SharedRates, type SharedBucket } from '../../../src/throttle/index.ts';
import { dropKeys, keysUnder, REDIS_URL, runPrefix } from './redis-fixture.ts';
import { serviceMissing } from '../../helpers/services.ts';

const CHILD = fileURLToPath(new URL('./shared-child.ts', import.meta.url));
const prefix = runPrefix('shrates');
const open: SharedRates[] = [];

after(async () => {
  await Promise.allSettled(open.map((rates) => rates.close()));
  await dropKeys(prefix);
});

async function replica(id: string, keyPrefix = prefix): Promise<SharedRates> {
  const rates = await SharedRates.connect({ url: REDIS_URL, keyPrefix, timeoutMs: 200, replicaId: id });
  open.push(rates);
  return rates;
}

/** Takes from every bucket in turn for `forMs`, yielding between rounds (lease replies come in then). */
async function drain(buckets: SharedBucket[], forMs: number): Promise<number[]> {
  const admitted = buckets.map(() => 0);
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    buckets.forEach((bucket, i) => {
      bucket.refill(performance.now());
      if (bucket.ready) {
        bucket.take();
        admitted[i]!++;
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  return admitted;
}

describe('SharedRates on a real Redis', { timeout: 30_000, skip: await serviceMissing('redis') }, () => {
  it('two replicas in one process share one burst: about 100 together, not 200', async (t) => {
    const [a, b] = [await replica('a'), await replica('b')];
    // 1/s: at most one token refills during the window, so the count is the shared burst.
    const [x, y] = await drain([a.bucket('class:one', 1, 100, performance.now()), b.bucket('class:one', 1, 100, performance.now())], 600);
    const total = x! + y!;
    t.diagnostic(`in one process: ${x} + ${y} = ${total}`);
    // 100 in Redis + 1 refilled + each replica's provisional first token at most; unspent leases (5 each) at least.
    assert.ok(total <= 103, `admitted ${total} (${x} + ${y}): more than the shared burst`);
    assert.ok(total >= 90, `admitted ${total} (${x} + ${y}): the shared burst was not spent`);
    assert.ok(x! > 0 && y! > 0, `both replicas took part (${x}, ${y})`);
    assert.equal(a.state.mode, 'shared');
    assert.equal(a.state.replicas, 2);
    assert.equal(a.state.fallbacks, 0);
  });

  it('holds the sustained rate too: 200/s burst 20 for 1 s admits about 220 across two replicas', async () => {
    const [a, b] = [await replica('c'), await replica('d')];
    const started = performance.now();
    const [x, y] = await drain([a.bucket('class:steady', 200, 20, performance.now()), b.bucket('class:steady', 200, 20, performance.now())], 1000);
    const seconds = (performance.now() - started) / 1000;
    const total = x! + y!;
    const ceiling = 20 + 200 * seconds + 2;
    assert.ok(total <= ceiling, `admitted ${total} in ${seconds.toFixed(2)} s: over the shared ${ceiling.toFixed(0)}`);
    assert.ok(total >= 0.8 * (20 + 200 * seconds) - 20, `admitted only ${total} in ${seconds.toFixed(2)} s`);
  });

  it('per-identity buckets are keys of their own, and the keys expire (a full bucket is a missing key)', async () => {
    const a = await replica('e');
    const [one, two] = await drain([a.bucket('identity:std:spiffe://t/one', 1000, 10, performance.now()), a.bucket('identity:std:spiffe://t/two', 1000, 10, performance.now())], 100);
    assert.ok(one! > 10 && two! > 10, `each identity has its own rate (${one}, ${two})`);
    const keys = await keysUnder(prefix);
    assert.ok(keys.includes(`${prefix}identity:std:spiffe://t/one`), keys.join(', '));
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const left = await keysUnder(`${prefix}identity:`);
    assert.deepEqual(left, [], 'a refilled bucket expires: idle identities leave nothing in Redis');
  });

  it('two meshgate processes against one Redis hold one shared limit', async (t) => {
    const childPrefix = `${prefix}proc:`;
    type Report = { admitted: number; mode: string; fallbacks: number; replicas: number };
    const start = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, REDIS_URL, childPrefix, '1', '100', '800'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.startsWith('ready\n')) resolve();
        });
      });
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const done = new Promise<Report>((resolve, reject) =>
        child.on('exit', (code) => {
          clearTimeout(timer);
          if (code === 0) resolve(JSON.parse(out.slice('ready\n'.length).trim()) as Report);
          else reject(new Error(`child exited ${code}: ${err}`));
        }),
      );
      return { child, ready, done };
    };
    const children = [start(), start()];
    await Promise.race([Promise.all(children.map((c) => c.ready)), Promise.all(children.map((c) => c.done))]);
    for (const { child } of children) child.stdin.write('go\n');
    const [x, y] = await Promise.all(children.map((c) => c.done));
    const total = x!.admitted + y!.admitted;
    t.diagnostic(`two processes: ${x!.admitted} + ${y!.admitted} = ${total}`);
    for (const report of [x!, y!]) assert.deepEqual([report.mode, report.fallbacks], ['shared', 0]);
    // Alone, each would have had the whole burst of 100 (200 together).
    assert.ok(total <= 103 && total >= 90, `two processes admitted ${total} (${x!.admitted} + ${y!.admitted}) from one burst of 100`);
    assert.equal(Math.max(x!.replicas, y!.replicas), 2, 'Redis saw both processes on the same limit');
  });
});
