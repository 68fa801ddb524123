/**
 * When checkpoints are written (every N events, after a quiet interval, at rotation and
 * shutdown), and that a failing anchor store or rotation never stops events being written.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { openAuditSeal } from '../../../src/audit/seal.ts';
import { loadPublicKey, loadSigningKey } from '../../../src/audit/signing-key.ts';
import { verifyAuditLog } from '../../../src/audit/verify-log.ts';
import { openEmbeddedAnchorStore } from '../../../src/store/anchors-embedded.ts';
import type { AuditAnchorStore } from '../../../src/store/anchors.ts';
import { statementEvent, tempDir } from './helpers.ts';
import { makeKey, readLines, type KeyPair } from './seal-helpers.ts';

describe('checkpoint cadence and failures', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let key: KeyPair;
  let n = 0;
  const logDir = async () => {
    const dir = join(tmp.dir, `c${n++}`);
    await mkdir(dir);
    return dir;
  };
  before(async () => {
    tmp = await tempDir();
    key = await makeKey(tmp.dir);
  });
  after(async () => {
    await tmp.cleanup();
  });

  const reasons = async (dir: string) => (await readLines(join(dir, 'audit.checkpoints.jsonl'))).map((l) => (JSON.parse(l) as { reason: string; seq: number }));

  const sealed = async (dir: string, every: { events: number; intervalMs: number }, stateDir: string) => {
    const active = join(dir, 'audit.jsonl');
    const seal = await openAuditSeal({
      file: active,
      signer: await loadSigningKey(key.privateKeyPath, { auditFile: active }),
      anchors: { store: await openEmbeddedAnchorStore(stateDir), id: 'cadence', ownsStore: true },
      checkpointEvery: every,
    });
    const sink = await openJsonlAuditSink(active, { batchDelayMs: 0, afterBatch: seal.afterBatch });
    return { seal, sink };
  };

  it('every N events: none closer than N, the last within N of the end', async () => {
    const dir = await logDir();
    const { seal, sink } = await sealed(dir, { events: 20, intervalMs: 3_600_000 }, join(tmp.dir, `state-${n}`));
    for (let i = 1; i <= 45; i++) {
      sink.record(statementEvent(i));
      if (i % 5 === 0) await sink.flush();
    }
    await sink.close();
    await seal.close();
    const all = await reasons(dir);
    assert.equal(all.at(-1)?.reason, 'shutdown');
    assert.equal(all.at(-1)?.seq, 45);
    const events = all.filter((r) => r.reason === 'events').map((r) => r.seq);
    assert.ok(events.length >= 2, `checkpoints at ${events.join(', ')}`);
    // Checkpoints coalesce (each signs the head when its turn comes), so N apart is a floor.
    events.forEach((seq, i) => assert.ok(seq - (events[i - 1] ?? 0) >= 20, `checkpoints at ${events.join(', ')}`));
    assert.ok(45 - events.at(-1)! < 20, `checkpoints at ${events.join(', ')}`);
  });

  it('after a quiet interval, for what came since: signed and anchored while meshgate runs', async () => {
    const dir = await logDir();
    const stateDir = join(tmp.dir, `state-${n}`);
    const { seal, sink } = await sealed(dir, { events: 1000, intervalMs: 100 }, stateDir);
    for (let i = 1; i <= 7; i++) sink.record(statementEvent(i));
    await sink.flush();
    for (let i = 0; i < 100 && !(await reasons(dir)).some((r) => r.reason === 'interval'); i++) await sleep(50);
    assert.deepEqual((await reasons(dir)).map((r) => [r.reason, r.seq]), [['interval', 7]]);
    const anchors = await openEmbeddedAnchorStore(stateDir);
    for (let i = 0; i < 100 && (await anchors.getAnchor('cadence'))?.seq !== 7; i++) await sleep(20);
    assert.equal((await anchors.getAnchor('cadence'))?.seq, 7);
    await anchors.close();
    await sink.close();
    await seal.close();
    assert.deepEqual((await reasons(dir)).map((r) => [r.reason, r.seq]), [['interval', 7], ['shutdown', 7]]);
  });

  it('an anchor store that fails is reported, and events are written on', async () => {
    const dir = await logDir();
    const active = join(dir, 'audit.jsonl');
    const errors: string[] = [];
    const broken: AuditAnchorStore = {
      location: 'nowhere',
      getAnchor: async () => null,
      listAnchors: async () => [],
      putAnchor: async () => {
        throw new Error('the store is down');
      },
      close: async () => {},
    };
    const seal = await openAuditSeal({ file: active, anchors: { store: broken, id: 'x' }, checkpointEvery: { events: 5, intervalMs: 60_000 }, onError: (e) => errors.push(e.message) });
    const sink = await openJsonlAuditSink(active, { batchDelayMs: 0, afterBatch: seal.afterBatch });
    for (let i = 1; i <= 20; i++) {
      sink.record(statementEvent(i));
      await sink.flush();
    }
    await sink.close();
    await seal.close();
    assert.ok(errors.some((e) => /the store is down/.test(e)), errors.join('\n'));
    assert.equal((await verifyAuditLog(active, {})).events, 20);
  });

  it('a rotation that fails is reported, the file goes on, and a later one succeeds', async () => {
    const dir = await logDir();
    const active = join(dir, 'audit.jsonl');
    const errors: string[] = [];
    let clock = Date.UTC(2025, 0, 1);
    const seal = await openAuditSeal({
      file: active,
      signer: await loadSigningKey(key.privateKeyPath, { auditFile: active }),
      rotate: { maxBytes: 4096 },
      now: () => clock,
      onError: (e) => errors.push(e.message),
    });
    const sink = await openJsonlAuditSink(active, { batchDelayMs: 0, afterBatch: seal.afterBatch });
    // A directory where the rotated file should go: the rename fails.
    await mkdir(join(dir, 'audit.000001.jsonl'));
    for (let i = 1; i <= 30; i++) {
      sink.record(statementEvent(i));
      await sink.flush();
      if (i === 15) {
        await rmdir(join(dir, 'audit.000001.jsonl'));
        clock += 61_000; // past the retry delay
      }
    }
    await sink.close();
    await seal.close();
    assert.equal(errors.filter((e) => /rotating the audit file/.test(e)).length, 1, errors.join('\n'));
    assert.ok((await readdir(dir)).includes('audit.000001.jsonl'));
    const result = await verifyAuditLog(active, { publicKeys: [await loadPublicKey(key.publicKeyPath)] });
    assert.deepEqual(result.findings, []);
    assert.equal(result.events, 30);
  });
});
