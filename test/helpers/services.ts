/**
 * The servers integration suites need, probed once per test file. A suite whose server is
 * absent skips, saying which server and how to get it, instead of failing test by test:
 * `describe('…', { skip: await serviceMissing('mariadb') }, …)`.
 *
 * CI must not pass by skipping: `.ci/run` sets MESHGATE_TEST_REQUIRE=mariadb,postgres,clients,
 * and then a missing server (or, for `clients`, a missing client program: external-clients.ts)
 * is a failure, with the same message.
 */
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';

export type Service = 'mariadb' | 'postgres' | 'redis';

const PROBE_TIMEOUT_MS = 3000;

export const MARIADB_TARGET = {
  host: process.env.MESHGATE_TEST_MARIADB_HOST ?? '127.0.0.1',
  port: Number(process.env.MESHGATE_TEST_MARIADB_PORT ?? 3306),
  user: process.env.MESHGATE_TEST_MARIADB_USER ?? 'root',
  password: process.env.MESHGATE_TEST_MARIADB_PASSWORD ?? '',
};

export const PG_URL = process.env.MESHGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const REDIS_URL = process.env.MESHGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const HOW_TO_GET: Record<Service, string> = {
  mariadb:
    `needs MariaDB at ${MARIADB_TARGET.host}:${MARIADB_TARGET.port} with user ${MARIADB_TARGET.user} ` +
    '(apt-get install mariadb-server, then start it; or set MESHGATE_TEST_MARIADB_HOST/PORT/USER/PASSWORD; `bash .ci/run` does both)',
  postgres:
    `needs PostgreSQL at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (apt-get install postgresql, then start it and create database test; ` +
    'or set MESHGATE_TEST_PG_URL; `bash .ci/run` does both)',
  redis: `needs Redis at ${REDIS_URL.replace(/:[^:@/]*@/, ':***@')} (apt-get install redis-server, then start it; or set MESHGATE_TEST_REDIS_URL; \`bash .ci/run\` does both)`,
};

const probes: Record<Service, () => Promise<void>> = {
  async mariadb() {
    const conn = await mysql.createConnection({ ...MARIADB_TARGET, connectTimeout: PROBE_TIMEOUT_MS });
    await conn.end();
  },
  async postgres() {
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  async redis() {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await redis.connect();
      await redis.ping();
    } finally {
      redis.disconnect();
    }
  },
};

const required = new Set((process.env.MESHGATE_TEST_REQUIRE ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** Whether MESHGATE_TEST_REQUIRE names `what`: then its absence fails the suite instead of skipping it. */
export function isRequired(what: string): boolean {
  return required.has(what);
}
const seen = new Map<Service, Promise<string | false>>();

/** false when every named server answers; otherwise the skip reason naming what is missing. */
export async function serviceMissing(...services: Service[]): Promise<string | false> {
  for (const service of services) {
    let verdict = seen.get(service);
    if (verdict === undefined) {
      verdict = probes[service]().then(
        () => false as const,
        (error: unknown) => `${HOW_TO_GET[service]}: ${(error as { code?: string }).code ?? (error as Error).message}`,
      );
      seen.set(service, verdict);
    }
    const missing = await verdict;
    if (missing === false) continue;
    if (isRequired(service)) throw new Error(`MESHGATE_TEST_REQUIRE names ${service}, but this suite ${missing}`);
    return missing;
  }
  return false;
}
