/**
 * The machine's real Redis for shared-rate tests: a key prefix unique to the run (deleted
 * after, even when setup failed), and a TCP proxy in front of Redis that a test cuts and
 * restores to make Redis unreachable for one client only. The shared Redis server itself is
 * never stopped: other sessions use it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { REDIS_URL } from '../../helpers/services.ts';

export { REDIS_URL };

/** `mgt_<suite>_<run>:` as every object the tests create is named. */
export function runPrefix(suite: string): string {
  return `mgt_${suite}_${Date.now().toString(36)}${randomBytes(3).toString('hex')}:`;
}

/** Deletes every key under `prefix`. */
export async function dropKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function keysUnder(prefix: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return await redis.keys(`${prefix}*`);
  } finally {
    redis.disconnect();
  }
}

export interface RedisProxy {
  readonly url: string;
  /** Closes every connection and refuses new ones (Redis is unreachable through the proxy). */
  cut(): void;
  /** Holds every byte both ways without closing or losing any, as a slow Redis or network does (requests time out). */
  stall(): void;
  /** Passes traffic again (what a stall held goes first). */
  restore(): void;
  close(): Promise<void>;
}

export async function redisProxy(target = new URL(REDIS_URL)): Promise<RedisProxy> {
  let mode: 'pass' | 'cut' | 'stall' = 'pass';
  const pairs = new Set<[Socket, Socket]>();
  const held: [Socket, Buffer][] = [];
  const server: Server = createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 6379), target.hostname);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (mode === 'pass') to.write(chunk);
        else if (mode === 'stall') held.push([to, chunk]);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    cut() {
      mode = 'cut';
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
    },
    stall() {
      mode = 'stall';
    },
    restore() {
      mode = 'pass';
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    async close() {
      mode = 'cut';
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
