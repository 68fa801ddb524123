/**
 * The PostgreSQL store against a real server: the shared contract, plus what only a
 * networked, multi-replica store has to get right (concurrent DDL, racing replicas,
 * bounded failure when the server is missing, and no password in any message).
 *
 * MESHGATE_TEST_PG_URL points elsewhere than the default (trust auth on 127.0.0.1:5432).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { openPostgresStore, type PostgresStoreOptions } from '../../../src/store/postgres.ts';
import type { StateStore } from '../../../src/store/types.ts';
import { describeStoreContract, isStoreError, makeLease, T0, type StoreFixture } from '../../helpers/store-contract.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('postgres');

const PG_URL = process.env.MESHGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN_ID = randomBytes(4).toString('hex');
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

const schemas: string[] = [];
let schemaCount = 0;
function newSchema(): string {
  const schema = `mgt_store_${RUN_ID}_${schemaCount++}`;
  schemas.push(schema);
  return schema;
}

/** The same server and database, with a password added: trust auth ignores it, messages must not show it. */
function urlWithPassword(database?: string, port?: number): string {
  const url = new URL(PG_URL);
  url.password = PASSWORD;
  if (database !== undefined) url.pathname = `/${database}`;
  if (port !== undefined) url.port = String(port);
  return url.toString();
}

async function admin<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

after(async () => {
  if (schemas.length === 0) return;
  await admin(schemas.map((schema) => `DROP SCHEMA IF EXISTS "${schema}" CASCADE`).join('; '));
});

async function freshFixture(): Promise<StoreFixture & { schema: string; open(extra?: Partial<PostgresStoreOptions>): Promise<StateStore> }> {
  const schema = newSchema();
  return { schema, open: (options = {}) => openPostgresStore({ connectionString: PG_URL, schema, ...options }) };
}

describeStoreContract('postgres', freshFixture, { skip: missing });

describe('postgres store', { skip: missing }, () => {
  const opened: StateStore[] = [];
  const track = (store: StateStore): StateStore => (opened.push(store), store);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  before(async () => {
    // Fails the suite early with a clear reason when the test server is not there.
    await admin('SELECT 1');
  });

  test('creates a snake_case table with bigint instants, and names the place without the password', async () => {
    const schema = newSchema();
    const store = track(await openPostgresStore({ connectionString: urlWithPassword(), schema }));
    const url = new URL(PG_URL);
    assert.equal(store.kind, 'postgres');
    assert.equal(store.location, `${url.hostname}:${url.port || 5432}${url.pathname} schema ${schema}`);
    assert.doesNotMatch(store.location, new RegExp(PASSWORD));

    const columns = await admin<{ column_name: string; data_type: string }>(
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      [schema, 'leases'],
    );
    assert.deepEqual(
      columns.map((c) => c.column_name),
      ['id', 'purpose', 'principal', 'role', 'database', 'username', 'user_host', 'state', 'created_at', 'expires_at', 'max_expires_at', 'updated_at', 'revoked_at', 'revoke_reason', 'owner'],
    );
    for (const name of ['created_at', 'expires_at', 'max_expires_at', 'updated_at', 'revoked_at']) {
      assert.equal(columns.find((c) => c.column_name === name)?.data_type, 'bigint', name);
    }
    const lease = makeLease({ expiresAt: T0 + 1 });
    await store.createLease(lease);
    const [row] = await admin<{ expires_at: string }>(`SELECT expires_at FROM "${schema}".leases WHERE id = $1`, [lease.id]);
    assert.equal(row?.expires_at, String(T0 + 1));
  });

  test('replicas starting together on a new schema all open it', async () => {
    const schema = newSchema();
    const stores = await Promise.all(Array.from({ length: 6 }, (_, i) => openPostgresStore({ connectionString: PG_URL, schema, owner: `replica-${i}` })));
    stores.forEach(track);
    const lease = makeLease();
    await stores[0]!.createLease(lease);
    for (const store of stores) assert.deepEqual(await store.getLease(lease.id), lease);
  });

  test('two replicas racing for the same leases: each lease has exactly one winner', async () => {
    const fixture = await freshFixture();
    const one = track(await fixture.open({ owner: 'replica-1' }));
    const two = track(await fixture.open({ owner: 'replica-2' }));
    const leases = Array.from({ length: 10 }, (_, i) => makeLease({ createdAt: T0 + i }));
    for (const lease of leases) await one.createLease(lease);
    const claims = await Promise.all(
      leases.flatMap((lease) => [one, two, one, two].map((store) => store.transitionLease(lease.id, ['active'], 'revoking'))),
    );
    const winners = claims.filter((claim) => claim !== null);
    assert.equal(winners.length, leases.length);
    assert.deepEqual(new Set(winners.map((w) => w.id)).size, leases.length);
    assert.ok(winners.every((w) => w.owner === 'replica-1' || w.owner === 'replica-2'));
  });

  test('an unreachable server fails with MG_STORE_UNAVAILABLE, fast, naming it without the password', async () => {
    const started = Date.now();
    await assert.rejects(
      openPostgresStore({ connectionString: urlWithPassword(undefined, 1), schema: newSchema(), connectTimeoutMs: 2_000 }),
      (error: unknown) => {
        isStoreError('MG_STORE_UNAVAILABLE', /cannot reach PostgreSQL at [^ ]+:1\/[^ ]+ \(ECONNREFUSED\).*check that it is running/)(error);
        assert.doesNotMatch((error as Error).message, new RegExp(PASSWORD));
        return true;
      },
    );
    assert.ok(Date.now() - started < 5_000);
  });

  describe('a server that accepts connections and never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];
    before(async () => {
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });
    after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    test('fails within the connect timeout instead of hanging', async () => {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      await assert.rejects(
        openPostgresStore({ connectionString: `postgres://meshgate:${PASSWORD}@127.0.0.1:${port}/test`, connectTimeoutMs: 500 }),
        (error: unknown) => {
          isStoreError('MG_STORE_UNAVAILABLE', new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port}/test did not answer in time`))(error);
          assert.doesNotMatch((error as Error).message, new RegExp(PASSWORD));
          return true;
        },
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 400 && elapsed < 5_000, `took ${elapsed} ms`);
    });
  });

  test('a database that does not exist is named in the error', async () => {
    const missing = `mgt_nodb_${RUN_ID}`;
    await assert.rejects(
      openPostgresStore({ connectionString: urlWithPassword(missing), schema: newSchema() }),
      (error: unknown) => {
        isStoreError('MG_STORE_UNAVAILABLE', new RegExp(`has no database "${missing}"; create it`))(error);
        assert.doesNotMatch((error as Error).message, new RegExp(PASSWORD));
        return true;
      },
    );
  });

  test('a statement blocked past statementTimeoutMs fails instead of waiting', async () => {
    const fixture = await freshFixture();
    const store = track(await fixture.open({ statementTimeoutMs: 300 }));
    const lease = makeLease();
    await store.createLease(lease);
    const blocker = new pg.Client({ connectionString: PG_URL });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM "${fixture.schema}".leases WHERE id = $1 FOR UPDATE`, [lease.id]);
      const started = Date.now();
      await assert.rejects(store.transitionLease(lease.id, ['active'], 'revoking'), isStoreError('MG_STORE_UNAVAILABLE', /ran longer than 300 ms and was cancelled/));
      assert.ok(Date.now() - started < 3_000);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    assert.equal((await store.transitionLease(lease.id, ['active'], 'revoking'))?.state, 'revoking', 'the pool recovers');
  });

  test('rejects a schema name that would need quoting', async () => {
    for (const schema of ['Meshgate', 'mg-store', '1mg', 'a"b', '']) {
      await assert.rejects(openPostgresStore({ connectionString: PG_URL, schema }), isStoreError('MG_CONFIG_INVALID', /schema name/));
    }
  });

  test('fails cleanly after close', async () => {
    const fixture = await freshFixture();
    const store = await fixture.open();
    await store.close();
    await store.close();
    await assert.rejects(store.getLease('lease_x'), isStoreError('MG_STORE_UNAVAILABLE'));
  });
});
