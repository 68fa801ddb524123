/**
 * `npm run bench:throttle-shared`: the per-statement admit cost when rates are shared through
 * Redis (SharedRates, tokens leased), against the same throttle with local buckets, in the same
 * run, interleaved round by round. Each operation is admit then release, as bench:throttle.
 *
 *   local-rate / shared-rate   a class with a rate limit only
 *   local-full / shared-full   rate and concurrency per class and per identity, 64 identities
 *
 * Work is timed in chunks of 10 000 statements; between chunks the loop yields (as a server
 * does between statements), so lease replies come in. Only the chunks are timed: the Redis
 * round trips happen off the admit path, which is the point. Needs Redis (MESHGATE_BENCH_REDIS,
 * default redis://127.0.0.1:6379); its keys are deleted after.
 * Options (env): MESHGATE_BENCH_OPS (default 1000000 per round), MESHGATE_BENCH_ROUNDS (7),
 * MESHGATE_BENCH_TIMEOUT_MS (the lease timeout, default 250: on a loaded 2-core machine Redis
 * answers now and then in 30-90 ms, and a timeout would measure the fallback instead).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { jsonLogger } from '../src/log.ts';
import { z } from 'zod';
import { throttleSection } from '../src/config/throttle-schema.ts';
import { ClassThrottle, SharedRates, throttleSettings, type AdmissionRequest } from '../src/throttle/index.ts';

const OPS = Number(process.env.MESHGATE_BENCH_OPS ?? 1_000_000);
const ROUNDS = Number(process.env.MESHGATE_BENCH_ROUNDS ?? 7);
const URL_ = process.env.MESHGATE_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const CHUNK = 10_000;
const PREFIX = `mgt_bench_${randomBytes(4).toString('hex')}:`;

const settings = (section: z.input<ReturnType<typeof throttleSection>>) => throttleSettings(throttleSection().parse(section));
const RATE = { perSecond: 1_000_000, burst: 10_000_000 };
// Classes of their own (keys of their own in Redis): one key taking both scenarios' statements
// would run dry at the schema's largest rate, and the bench would measure refusals.
const rateOnly = settings({ defaultClass: 'rate-only', classes: { 'rate-only': { rate: RATE } } });
const full = settings({ defaultClass: 'full', classes: { full: { rate: RATE, concurrency: 10_000, perIdentity: { rate: RATE, concurrency: 1000 } } } });

const rates = await SharedRates.connect({ url: URL_, keyPrefix: PREFIX, timeoutMs: Number(process.env.MESHGATE_BENCH_TIMEOUT_MS ?? 250), replicaId: 'bench', logger: jsonLogger() });
if (rates.state.mode !== 'shared') throw new Error(`Redis at ${URL_} did not answer: the shared scenarios need it`);
const scenarios = [
  { name: 'local-rate', throttle: new ClassThrottle(rateOnly) },
  { name: 'shared-rate', throttle: new ClassThrottle(rateOnly, { rates }) },
  { name: 'local-full', throttle: new ClassThrottle(full) },
  { name: 'shared-full', throttle: new ClassThrottle(full, { rates }) },
];
const requests: AdmissionRequest[] = Array.from({ length: 64 }, (_, i) => ({ engine: 'mysql', kind: 'statement', serviceClass: 'default', principal: `spiffe://bench.local/ns/shop/sa/caller-${i}` }));
const refused = new Map<string, number>();

async function run(name: string, throttle: ClassThrottle): Promise<number> {
  let ns = 0n;
  for (let done = 0; done < OPS; done += CHUNK) {
    const started = process.hrtime.bigint();
    for (let i = done; i < done + CHUNK; i++) {
      const admission = throttle.admit(requests[i & 63]!);
      if (admission.admitted) admission.release();
      else refused.set(name, (refused.get(name) ?? 0) + 1);
    }
    ns += process.hrtime.bigint() - started;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return Number(ns) / 1000 / OPS;
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
try {
  for (const { name, throttle } of scenarios) await run(name, throttle);
  refused.clear();
  const leasesBefore = rates.state.leases;
  const samples = new Map<string, number[]>(scenarios.map(({ name }) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) for (const { name, throttle } of scenarios) samples.get(name)!.push(await run(name, throttle));
  const result: Record<string, number> = {};
  for (const [name, values] of samples) {
    result[name] = median(values);
    console.log(JSON.stringify({ scenario: name, ops: OPS, rounds: ROUNDS, us_per_op: Number(median(values).toFixed(4)), min_us: Number(Math.min(...values).toFixed(4)), max_us: Number(Math.max(...values).toFixed(4)), refused: refused.get(name) ?? 0 }));
  }
  const state = rates.state;
  console.log(
    JSON.stringify({
      scenario: 'summary',
      target_us: 2,
      shared_rate_us: Number(result['shared-rate']!.toFixed(4)),
      shared_full_us: Number(result['shared-full']!.toFixed(4)),
      shared_rate_vs_local: Number((result['shared-rate']! / result['local-rate']!).toFixed(2)),
      shared_full_vs_local: Number((result['shared-full']! / result['local-full']!).toFixed(2)),
      within_target: result['shared-full']! < 2,
      lease_requests: state.leases - leasesBefore,
      statements_per_lease: Math.round((2 * ROUNDS * OPS) / Math.max(1, state.leases - leasesBefore)),
      mode: state.mode,
      fallbacks: state.fallbacks,
    }),
  );
} finally {
  for (const { throttle } of scenarios) throttle.close();
  await rates.close();
  const redis = new Redis(URL_);
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}
