/**
 * One "replica" for the two-process test: connects, says `ready`, waits for `go` on stdin (so
 * both processes start together however slowly each started), then for `forMs` tries one take
 * each millisecond from one shared rate, and prints how many it admitted as one JSON line.
 * argv: url prefix perSecond burst forMs.
 */
import { createInterface } from 'node:readline';
import { SharedRates } from '../../../src/throttle/index.ts';

const [url, keyPrefix, perSecond, burst, forMs] = process.argv.slice(2) as [string, string, string, string, string];
const rates = await SharedRates.connect({ url, keyPrefix, timeoutMs: 500, replicaId: `child-${process.pid}` });
const bucket = rates.bucket('class:shared', Number(perSecond), Number(burst), performance.now());
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) if (line === 'go') break;
const end = Date.now() + Number(forMs);
let admitted = 0;
let seen = 1;
while (Date.now() < end) {
  bucket.refill(performance.now());
  if (bucket.ready) {
    bucket.take();
    admitted++;
  }
  seen = Math.max(seen, rates.state.replicas);
  // Paced, so the burst lasts long enough for both processes to take part; the admit path itself never waits.
  await new Promise((resolve) => setTimeout(resolve, 1));
}
const state = rates.state;
await rates.close();
process.stdout.write(JSON.stringify({ admitted, mode: state.mode, fallbacks: state.fallbacks, replicas: seen }) + '\n');
lines.close();
