/**
 * Shutting meshgate down with sessions open: every open session's end is in the audit
 * trail before the sink closes (DESIGN invariant 5: audit is never silently dropped).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import { startHarness, STANDARD_WORKLOADS } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

describe('shutdown with open sessions', { skip: missing }, () => {
  it('records session_end for every open session before the audit sink closes', async () => {
    const h = await startHarness({ name: 'shutdown', workloads: STANDARD_WORKLOADS });
    try {
      const options = { host: '127.0.0.1', port: h.port, user: 'u', database: h.database };
      const open = [await mysql.createConnection({ ...options, ssl: h.ssl('orders') }), await mysql.createConnection({ ...options, ssl: h.ssl('analytics') })];
      for (const conn of open) {
        conn.on('error', () => {});
        await conn.query('SELECT 1');
      }
      await h.meshgate.close();
      const events = (await readFile(h.auditFile, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string; reason?: string });
      const ends = events.filter((e) => e.type === 'session_end');
      assert.equal(ends.length, 2, JSON.stringify(events.map((e) => e.type)));
      assert.ok(ends.every((e) => e.reason === 'meshgate shut down'));
      assert.equal((await verifyAuditFile(h.auditFile)).ok, true);
      for (const conn of open) conn.destroy();
    } finally {
      await h.provisioned.drop();
      await rm(h.dir, { recursive: true, force: true });
    }
  });
});
