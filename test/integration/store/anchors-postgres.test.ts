/**
 * Audit anchors in PostgreSQL, where replicas share them: the shared contract against the
 * real server, each fixture in a schema of its own, all dropped at the end.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { openPostgresAnchorStore } from '../../../src/store/anchors-postgres.ts';
import { anchor, describeAnchorContract } from '../../helpers/anchor-contract.ts';
import { PG_URL, serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('postgres');
const RUN_ID = randomBytes(4).toString('hex');
const schemas: string[] = [];
const newSchema = () => {
  const schema = `mgt_anchor_${RUN_ID}_${schemas.length}`;
  schemas.push(schema);
  return schema;
};

after(async () => {
  if (schemas.length === 0 || missing !== false) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(schemas.map((schema) => `DROP SCHEMA IF EXISTS "${schema}" CASCADE`).join('; '));
  } finally {
    await client.end();
  }
});

describeAnchorContract(
  'postgres',
  async () => {
    const schema = newSchema();
    return { open: (options = {}) => openPostgresAnchorStore({ connectionString: PG_URL, schema, ...options }) };
  },
  { skip: missing },
);

describe('postgres audit anchor store', { skip: missing }, () => {
  test('a table audit_anchors in the state schema, beside leases', async () => {
    const schema = newSchema();
    const store = await openPostgresAnchorStore({ connectionString: PG_URL, schema });
    try {
      await store.putAnchor(anchor());
      assert.match(store.location, new RegExp(`schema ${schema}$`));
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        const rows = (await client.query(`SELECT id, seq FROM "${schema}".audit_anchors`)).rows as { id: string; seq: string }[];
        assert.deepEqual(rows.map((r) => [r.id, Number(r.seq)]), [[anchor().id, 100]]);
      } finally {
        await client.end();
      }
    } finally {
      await store.close();
    }
  });

  test('an unreachable server fails fast with MG_STORE_UNAVAILABLE', async () => {
    const started = Date.now();
    await assert.rejects(
      openPostgresAnchorStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema: newSchema(), connectTimeoutMs: 1000 }),
      (error: unknown) => (error as { code?: string }).code === 'MG_STORE_UNAVAILABLE',
    );
    assert.ok(Date.now() - started < 5000);
  });
});
