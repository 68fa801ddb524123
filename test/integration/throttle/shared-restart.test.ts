/**
 * Redis stopped and started again mid-test: a private redis-server of this test's own (the
 * machine's shared Redis is never stopped, other sessions use it), on a free port. A replica
 * falls back to local buckets when its Redis goes, and shares again when Redis is back,
 * although the restarted server has forgotten the lease script (NOSCRIPT is answered by
 * loading it again).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Logger } from '../../../src/log.ts';
import { SharedRates } from '../../../src/throttle/index.ts';

const REDIS_SERVER = process.env.MESHGATE_TEST_REDIS_SERVER ?? '/usr/bin/redis-server';
const missing = spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' }).status === 0 ? false : `needs ${REDIS_SERVER} (apt-get install redis-server)`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('SharedRates across a Redis restart', { timeout: 30_000, skip: missing }, () => {
  let dir = '';
  let redis: ChildProcess | null = null;
  let rates: SharedRates | null = null;
  after(async () => {
    await rates?.close().catch(() => undefined);
    if (redis !== null && redis.exitCode === null) {
      redis.kill('SIGKILL');
      await once(redis, 'exit');
    }
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const startRedis = async (port: number) => {
    const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = createServer().listen(port, '127.0.0.1');
        socket.once('listening', () => socket.close(() => resolve(false)));
        socket.once('error', () => resolve(true));
      });
      if (up) return child;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`redis-server did not listen on ${port}`);
  };

  it('falls back when its Redis stops and shares again when it is started again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-redis-'));
    const port = await freePort();
    redis = await startRedis(port);
    const lines: { level: string; message: string }[] = [];
    const at = (level: string) => (message: string) => void lines.push({ level, message });
    const logger: Logger = { info: at('info'), warn: at('warn'), error: at('error') };
    rates = await SharedRates.connect({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'mgt_restart:', timeoutMs: 100, replicaId: 'only', logger });
    const bucket = rates.bucket('class:c', 1000, 100, performance.now());
    const spend = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        bucket.refill(performance.now());
        if (bucket.ready) bucket.take();
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const until = async (what: string, holds: () => boolean, withinMs: number) => {
      const end = Date.now() + withinMs;
      while (!holds()) {
        if (Date.now() > end) assert.fail(`not within ${withinMs} ms: ${what}; log: ${JSON.stringify(lines)}`);
        await spend(20);
      }
    };
    await spend(100);
    assert.equal(rates.state.mode, 'shared');

    redis.kill('SIGTERM');
    await once(redis, 'exit');
    await until('the replica falls back to local buckets', () => rates!.state.mode === 'local', 5_000);
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1, 'said once');

    redis = await startRedis(port);
    await until('the replica shares through the restarted Redis again', () => rates!.state.mode === 'shared', 10_000);
    const leases = rates.state.leases;
    await spend(200);
    assert.ok(rates.state.leases > leases, 'tokens are leased from the restarted Redis (its script loaded again)');
    assert.equal(rates.state.mode, 'shared');
    assert.equal(lines.filter((l) => l.level === 'info').length, 1, 'the recovery said once');
  });
});
