/**
 * The anchor in PostgreSQL, as replicas sharing one state store keep it: a log whose tail and
 * checkpoints were both cut verifies as truncated with the anchor read back from the server,
 * and a replica will not start writing on top of it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import pg from 'pg';
import { openAuditSeal } from '../../../src/audit/seal.ts';
import { loadPublicKey, loadSigningKey } from '../../../src/audit/signing-key.ts';
import { verifyAuditLog } from '../../../src/audit/verify-log.ts';
import { openPostgresAnchorStore } from '../../../src/store/anchors-postgres.ts';
import type { AuditAnchorStore } from '../../../src/store/anchors.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { PG_URL, serviceMissing } from '../../helpers/services.ts';
import { tempDir } from '../../unit/audit/helpers.ts';
import { makeKey, readLines, writeLines, writeSealedLog, type KeyPair } from '../../unit/audit/seal-helpers.ts';

const missing = await serviceMissing('postgres');
const SCHEMA = `mgt_auditseal_${randomBytes(4).toString('hex')}`;

describe('audit anchors in PostgreSQL', { skip: missing }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>> | undefined;
  let key: KeyPair;
  let store: AuditAnchorStore | undefined;

  before(async () => {
    tmp = await tempDir();
    key = await makeKey(tmp.dir);
    store = await openPostgresAnchorStore({ connectionString: PG_URL, schema: SCHEMA });
  });
  after(async () => {
    await cleanup(
      () => store?.close(),
      async () => {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
        } finally {
          await client.end();
        }
      },
      () => tmp?.cleanup(),
    );
  });

  it('shows a tail cut together with its checkpoints, and refuses to write on top of it', async () => {
    const root = join(tmp!.dir, 'run');
    const log = await writeSealedLog(root, { key, events: 100, anchorStore: store!, anchorId: 'replica-pg:audit.jsonl', seal: { checkpointEvery: { events: 20, intervalMs: 3_600_000 } } });
    const anchor = await store!.getAnchor('replica-pg:audit.jsonl');
    assert.equal(anchor?.seq, 100);
    assert.ok(anchor?.checkpoint?.includes('"reason":"shutdown"'), 'the anchor carries the signed checkpoint');

    const kept = (await readLines(log.active)).slice(0, -50);
    await writeLines(log.active, kept);
    const cpFile = join(log.logDir, 'audit.checkpoints.jsonl');
    await writeLines(cpFile, (await readLines(cpFile)).filter((c) => (JSON.parse(c) as { seq: number }).seq <= 50));

    const publicKeys = [await loadPublicKey(key.publicKeyPath)];
    assert.equal((await verifyAuditLog(log.active, { publicKeys })).ok, true);
    const result = await verifyAuditLog(log.active, { publicKeys, anchor: await store!.getAnchor('replica-pg:audit.jsonl') });
    assert.equal(result.findings[0]?.kind, 'truncated');
    assert.deepEqual([result.findings[0]?.file, result.findings[0]?.line], ['audit.jsonl', 50]);

    await assert.rejects(
      openAuditSeal({ file: log.active, signer: await loadSigningKey(key.privateKeyPath), anchors: { store: store!, id: 'replica-pg:audit.jsonl' } }),
      (error: unknown) => (error as { code?: string }).code === 'MG_AUDIT_UNAVAILABLE' && /anchor/.test((error as Error).message),
    );
  });
});
