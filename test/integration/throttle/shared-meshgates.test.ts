/**
 * Two meshgates in front of one MariaDB share a class's rate through the real Redis
 * (throttle.shared): what one admits the other cannot, so together they hold one limit, and
 * each says in its metrics that its rates are shared.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { cleanup } from '../../helpers/cleanup.ts';
import { startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { REDIS_URL, serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb', 'redis');
const PREFIX = `mgt_sharedmg_${randomBytes(4).toString('hex')}:`;
const BURST = 20;

describe('two meshgates sharing a service class rate through Redis', { skip: missing }, () => {
  const replicas: Harness[] = [];
  const open: mysql.Connection[] = [];
  before(async () => {
    for (const name of ['sharedmga', 'sharedmgb']) {
      replicas.push(
        await startHarness({
          name,
          workloads: STANDARD_WORKLOADS,
          config: (config) => {
            config.throttle = {
              shared: { redis: { url: REDIS_URL, keyPrefix: PREFIX } },
              // BURST statements an hour for the whole fleet.
              classes: { default: { rate: { perSecond: 1 / 3600, burst: BURST } } },
            };
            config.metrics = { listen: '127.0.0.1:0' };
          },
        }),
      );
    }
  });
  after(async () => {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await cleanup(
      ...open.map((c) => () => c.end()),
      ...replicas.map((h) => () => h.stop()),
      async () => {
        await redis.connect();
        const keys = await redis.keys(`${PREFIX}*`);
        if (keys.length > 0) await redis.del(...keys);
      },
      () => redis.quit(),
    );
  });

  it('admits about one burst across both, not one each', async () => {
    const admitted = [0, 0];
    for (const [i, h] of replicas.entries()) {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'ignored', database: h.database, ssl: h.ssl('orders') });
      open.push(conn);
      for (let n = 0; n < BURST; n++) {
        const ok = await conn.query('SELECT 1').then(() => true, (error: { errno: number }) => (assert.equal(error.errno, 1226), false));
        if (ok) admitted[i]!++;
      }
    }
    const total = admitted[0]! + admitted[1]!;
    // Unshared, each would admit its own burst (2 × BURST). Slack by design (docs/throttling.md):
    // a provisional token per replica and key over; under, tokens leased and not spent, and
    // statements refused while a lease is on its way.
    assert.ok(total <= BURST + 2, `admitted ${admitted.join(' + ')} = ${total}: more than one burst of ${BURST} across the fleet`);
    assert.ok(total >= BURST / 2, `admitted ${admitted.join(' + ')} = ${total}: far less than one burst of ${BURST}`);
    for (const h of replicas) {
      const text = await (await fetch(`http://127.0.0.1:${h.meshgate.metricsPort}/metrics`)).text();
      assert.match(text, /^meshgate_throttle_shared 1$/m, 'rates are shared through Redis');
    }
  });
});
