/**
 * One "replica" for the two-process test: takes from one shared rate as fast as it can from
 * `startAt` (epoch ms, so both processes start together) for `forMs`, then prints how many it
 * admitted as one JSON line. argv: url prefix perSecond burst startAt forMs.
 */
import { SharedRates } from '../../../src/throttle/index.ts';

const [url, keyPrefix, perSecond, burst, startAt, forMs] = process.argv.slice(2) as [string, string, string, string, string, string];
const rates = await SharedRates.connect({ url, keyPrefix, timeoutMs: 200, replicaId: `child-${process.pid}` });
const bucket = rates.bucket('class:shared', Number(perSecond), Number(burst), performance.now());
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
const end = Date.now() + Number(forMs);
let admitted = 0;
while (Date.now() < end) {
  bucket.refill(performance.now());
  if (bucket.ready) {
    bucket.take();
    admitted++;
  }
  // Lets the lease replies in: the admit path itself never waits.
  await new Promise((resolve) => setImmediate(resolve));
}
const state = rates.state;
await rates.close();
process.stdout.write(JSON.stringify({ admitted, mode: state.mode, replicas: state.replicas }) + '\n');
