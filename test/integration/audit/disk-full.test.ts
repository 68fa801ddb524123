/**
 * The audit file on a 1 MiB tmpfs that fills up (issue 12, point 4), in both durability
 * modes, against real MariaDB and Google's Firestore emulator: once the audit cannot write,
 * statements, logins and Firestore writes are refused with MG_AUDIT_UNAVAILABLE (not
 * accepted, not stalled), the log says so once, and when space returns meshgate takes
 * operations again by itself. Afterwards every acknowledged operation, and every row that
 * reached MariaDB, has its event, the chain verifies, and a `recovered` event records the outage.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import type { AuditDurability } from '../../../src/audit/types.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { FIRESTORE_POLICY, FIRESTORE_SKIP, FIRESTORE_WORKLOADS, startFirestoreFixture, type FirestoreFixture } from '../../helpers/firestore.ts';
import { captureLog } from '../../helpers/log.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';
import { serviceMissing } from '../../helpers/services.ts';
import { smallDisk, type SmallDisk } from '../../helpers/tmpfs.ts';

const disk = await smallDisk('1m');
const skip = typeof disk === 'string' ? disk : false;
const mariadbMissing = skip || (await serviceMissing('mariadb'));
const firestoreMissing = skip || FIRESTORE_SKIP;
after(async () => {
  if (typeof disk !== 'string') await disk.unmount();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readEvents(file: string): Promise<Record<string, unknown>[]> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function outageLines(lines: readonly { message: string }[]) {
  return {
    unavailable: lines.filter((l) => l.message.startsWith('audit unavailable')).length,
    recovered: lines.filter((l) => l.message.startsWith('audit records again')).length,
  };
}

for (const durability of ['strict', 'buffered'] as const satisfies readonly AuditDurability[]) {
  describe(`MySQL with the audit disk full (${durability})`, { skip: mariadbMissing }, () => {
    const d = disk as SmallDisk;
    const auditFile = join(d.dir, `mysql-${durability}.jsonl`);
    const logs = captureLog();
    let h: Harness;
    before(async () => {
      h = await startHarness({
        name: `adfull${durability[0]}`,
        workloads: STANDARD_WORKLOADS,
        setupSql: ['CREATE TABLE {db}.t (v VARCHAR(40) PRIMARY KEY)'],
        log: logs.log,
        config: (c) => {
          c.audit = { file: auditFile, durability };
        },
      });
    });
    after(() => cleanup(() => d.free(), () => h?.stop()));

    const connect = () => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl('orders') });

    it('refuses statements and logins while it cannot write, says so once, and recovers by itself', async () => {
      const acked: string[] = [];
      const a = await connect();
      try {
        await a.query('INSERT INTO t VALUES (?)', [`before-${durability}`]);
        acked.push(`before-${durability}`);
        await d.fill();
        let refused: Error | null = null;
        // The audit file's last page still takes a few lines; then the disk is full.
        for (let i = 0; i < 500 && refused === null; i++) {
          try {
            await a.query('INSERT INTO t VALUES (?)', [`full-${durability}-${i}`]);
            acked.push(`full-${durability}-${i}`);
          } catch (error) {
            refused = error as Error;
          }
        }
        assert.ok(refused !== null, 'a statement was refused once the disk was full');
        assert.match(refused.message, /MG_AUDIT_UNAVAILABLE/);
        const t0 = Date.now();
        await assert.rejects(a.query('INSERT INTO t VALUES (?)', [`refused-${durability}`]), /MG_AUDIT_UNAVAILABLE/);
        assert.ok(Date.now() - t0 < 2000, 'refused at once, not held');
        await assert.rejects(connect(), /MG_AUDIT_UNAVAILABLE/, 'a new login is refused too');
        assert.deepEqual(outageLines(logs.lines), { unavailable: 1, recovered: 0 });

        await d.free();
        let back = false;
        for (let i = 0; i < 100 && !back; i++) {
          try {
            await a.query('INSERT INTO t VALUES (?)', [`after-${durability}`]);
            acked.push(`after-${durability}`);
            back = true;
          } catch (error) {
            assert.match((error as Error).message, /MG_AUDIT_UNAVAILABLE/);
            await sleep(200);
          }
        }
        assert.ok(back, 'statements are accepted again once there is space');
        const b = await connect();
        await b.query('SELECT 1');
        await b.end();
      } finally {
        await a.end().catch(() => undefined);
      }
      await h.meshgate.audit.flush();
      assert.deepEqual(outageLines(logs.lines), { unavailable: 1, recovered: 1 });

      const verdict = await verifyAuditFile(auditFile);
      assert.equal(verdict.ok, true, String(verdict.problem));
      const events = await readEvents(auditFile);
      const allowed = events.filter((e) => e['type'] === 'statement' && e['decision'] === 'allow' && e['error'] === null).map((e) => String(e['statement']));
      const intents = events.filter((e) => e['type'] === 'intent').map((e) => String(e['statement']));
      const direct = await mysql.createConnection(MARIADB);
      const [rows] = await direct.query<mysql.RowDataPacket[]>(`SELECT v FROM \`${h.database}\`.t`);
      await direct.end();
      await h.stop();
      const inDatabase = rows.map((r) => String(r['v'])).sort();
      assert.deepEqual(inDatabase, [...acked].sort(), 'exactly the acknowledged statements reached MariaDB');
      for (const value of inDatabase) {
        assert.ok(allowed.some((s) => s.includes(`'${value}'`)), `the row ${value} has its statement event`);
        if (durability === 'strict') assert.ok(intents.some((s) => s.includes(`'${value}'`)), `the row ${value} had its intent on disk first`);
      }
      const recovered = events.filter((e) => e['type'] === 'recovered');
      assert.equal(recovered.length, 1);
      assert.equal((recovered[0] as { cause: string; outage: { error: string } }).outage.error, 'ENOSPC');
    });
  });

  describe(`Firestore with the audit disk full (${durability})`, { skip: firestoreMissing }, () => {
    const d = disk as SmallDisk;
    const auditFile = join(d.dir, `firestore-${durability}.jsonl`);
    const logs = captureLog();
    let fixture: FirestoreFixture;
    before(async () => {
      fixture = await startFirestoreFixture({
        name: `adfullfs${durability[0]}`,
        project: `mg-it-audit-full-${durability}`,
        workloads: FIRESTORE_WORKLOADS,
        policy: FIRESTORE_POLICY,
        log: logs.log,
        config: (c) => {
          c.audit = { file: auditFile, durability };
        },
      });
    });
    after(() => cleanup(() => d.free(), () => fixture?.stop()));

    it('forwards no write it cannot record, says so once, and takes writes again when space returns', async () => {
      const db = fixture.client('orders');
      const acked: string[] = [];
      await db.doc('orders/before').set({ n: 0 });
      acked.push('orders/before');
      await d.fill();
      let held: { path: string; write: Promise<unknown> } | null = null;
      for (let i = 0; i < 200 && held === null; i++) {
        const path = `orders/full-${i}`;
        const write = db.doc(path).set({ n: i });
        const outcome = await Promise.race([write.then(() => 'done' as const, (error: Error) => error), sleep(1500).then(() => 'waiting' as const)]);
        if (outcome === 'done') acked.push(path);
        else {
          // The SDK retries UNAVAILABLE by itself; either way the write did not happen.
          if (outcome instanceof Error) assert.match(outcome.message, /MG_AUDIT_UNAVAILABLE/);
          held = { path, write: write.catch(() => undefined) };
        }
      }
      assert.ok(held !== null, 'a write was refused once the disk was full');
      assert.equal((await fixture.direct.doc(held.path).get()).exists, false, 'nothing reached Firestore');
      assert.deepEqual(outageLines(logs.lines), { unavailable: 1, recovered: 0 });
      await d.free();
      let back = false;
      for (let i = 0; i < 60 && !back; i++) {
        try {
          await db.doc('orders/after').set({ n: 1 });
          back = true;
          acked.push('orders/after');
        } catch {
          await sleep(500);
        }
      }
      assert.ok(back, 'writes are accepted again once there is space');
      await held.write;
      if ((await fixture.direct.doc(held.path).get()).exists) acked.push(held.path);
      await fixture.stop();
      assert.deepEqual(outageLines(logs.lines), { unavailable: 1, recovered: 1 });
      assert.equal((await verifyAuditFile(auditFile)).ok, true);
      const events = await readEvents(auditFile);
      for (const path of acked) {
        const recorded = events.some((e) => e['type'] === 'rpc' && e['decision'] === 'allow' && e['status'] === 0 && (e['paths'] as string[]).some((p) => p.endsWith(path)));
        assert.ok(recorded, `the acknowledged write of ${path} has its event`);
        if (durability === 'strict') assert.ok(events.some((e) => e['type'] === 'intent' && (e['paths'] as string[]).some((p) => p.endsWith(path))), `${path} had its intent on disk first`);
      }
      assert.ok(events.some((e) => e['type'] === 'recovered' && e['cause'] === 'unavailable'));
    });
  });
}
