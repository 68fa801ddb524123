/**
 * `npm run bench:throttle`: the throttle's admit path per statement, alone. Each operation is
 * what an engine does for one statement: admit, then release when it ends. Measured in the
 * same run, interleaved round by round so machine noise hits all alike:
 *
 *   baseline     admitEverything (what meshgate runs without a throttle section)
 *   rate         a class with a rate limit only (tokens always there)
 *   full         a class with rate, concurrency and per-identity rate and concurrency, 64
 *                identities taking turns (the most the local path does per statement)
 *
 * Issue 14's target: under 2 µs per statement when the local bucket has tokens. One JSON
 * line per scenario (µs/op, median of rounds) and a last line with the ratios to baseline.
 * Options (env): MESHGATE_BENCH_OPS (default 1000000 per round), MESHGATE_BENCH_ROUNDS (7).
 */
import { z } from 'zod';
import { throttleSection } from '../src/config/throttle-schema.ts';
import { admitEverything, ClassThrottle, throttleSettings, type AdmissionRequest, type Throttle } from '../src/throttle/index.ts';

const OPS = Number(process.env.MESHGATE_BENCH_OPS ?? 1_000_000);
const ROUNDS = Number(process.env.MESHGATE_BENCH_ROUNDS ?? 7);

const settings = (section: z.input<ReturnType<typeof throttleSection>>) => throttleSettings(throttleSection().parse(section));
// The largest rate and burst the schema allows: every admit of the run finds a token (the path the target is for).
const RATE = { perSecond: 1_000_000, burst: 10_000_000 };
const scenarios: { name: string; throttle: Throttle }[] = [
  { name: 'baseline', throttle: admitEverything },
  { name: 'rate', throttle: new ClassThrottle(settings({ classes: { default: { rate: RATE } } })) },
  {
    name: 'full',
    throttle: new ClassThrottle(settings({ classes: { default: { rate: RATE, concurrency: 10_000, perIdentity: { rate: RATE, concurrency: 1000 } } } })),
  },
];

const requests: AdmissionRequest[] = Array.from({ length: 64 }, (_, i) => ({ engine: 'mysql', kind: 'statement', serviceClass: 'default', principal: `spiffe://bench.local/ns/shop/sa/caller-${i}` }));

let refused = 0;
function run(throttle: Throttle): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) {
    const admission = throttle.admit(requests[i & 63]!);
    if (admission.admitted) admission.release();
    else refused++;
  }
  return Number(process.hrtime.bigint() - started) / 1000 / OPS;
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// Warm-up: let the JIT settle every path before anything is kept.
for (const { throttle } of scenarios) run(throttle);
const samples = new Map<string, number[]>(scenarios.map(({ name }) => [name, []]));
for (let round = 0; round < ROUNDS; round++) for (const { name, throttle } of scenarios) samples.get(name)!.push(run(throttle));

const result: Record<string, number> = {};
for (const [name, values] of samples) {
  result[name] = median(values);
  console.log(JSON.stringify({ scenario: name, ops: OPS, rounds: ROUNDS, us_per_op: Number(median(values).toFixed(4)), min_us: Number(Math.min(...values).toFixed(4)), max_us: Number(Math.max(...values).toFixed(4)) }));
}
const base = result['baseline']!;
console.log(
  JSON.stringify({
    scenario: 'summary',
    target_us: 2,
    rate_us: Number(result['rate']!.toFixed(4)),
    full_us: Number(result['full']!.toFixed(4)),
    rate_ratio_to_baseline: Number((result['rate']! / base).toFixed(1)),
    full_ratio_to_baseline: Number((result['full']! / base).toFixed(1)),
    within_target: result['full']! < 2,
    refused,
  }),
);
