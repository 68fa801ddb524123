/**
 * Rotation by size and by time: each file starts by chaining to the previous file's last
 * hash, so a whole directory verifies as one log, across restarts and a crash mid-rotation.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdir, readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { openAuditSeal } from '../../../src/audit/seal.ts';
import { verifyAuditLog } from '../../../src/audit/verify-log.ts';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import { loadPublicKey } from '../../../src/audit/signing-key.ts';
import { statementEvent, tempDir } from './helpers.ts';
import { makeKey, readLines, writeSealedLog, type KeyPair } from './seal-helpers.ts';

const HOUR = 3_600_000;

describe('audit rotation', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let key: KeyPair;
  let n = 0;
  const root = () => join(tmp.dir, `r${n++}`);
  before(async () => {
    tmp = await tempDir();
    key = await makeKey(tmp.dir);
  });
  after(async () => {
    await tmp.cleanup();
  });

  it('by size: numbered files no larger than the limit plus one batch, each continuing the last', async () => {
    const maxBytes = 16 * 1024;
    const log = await writeSealedLog(root(), { key, events: 200, perBatch: 5, seal: { rotate: { maxBytes } } });
    const names = (await readdir(log.logDir)).filter((f) => f !== 'audit.checkpoints.jsonl').sort();
    assert.ok(names.length >= 6, `rotated into ${names.join(', ')}`);
    assert.equal(names.at(-1), 'audit.jsonl');
    assert.deepEqual(names.slice(0, -1), names.slice(0, -1).map((_, i) => `audit.${String(i + 1).padStart(6, '0')}.jsonl`));
    let previous: { seq: number; hash: string } | null = null;
    for (const [i, name] of names.entries()) {
      const lines = (await readLines(join(log.logDir, name))).map((l) => JSON.parse(l) as Record<string, unknown>);
      if (name !== 'audit.jsonl') assert.ok((await stat(join(log.logDir, name))).size < maxBytes + 5 * 1024, `${name} stays near the limit`);
      const head = lines[0]!;
      if (previous === null) {
        assert.equal(head['seq'], 1);
      } else {
        assert.equal(head['type'], 'audit_file');
        assert.equal(head['file'], i + 1);
        assert.equal(head['previous'], names[i - 1]);
        assert.equal(head['prev'], previous.hash);
        assert.equal(head['seq'], previous.seq + 1);
      }
      const last: Record<string, unknown> = lines.at(-1)!;
      previous = { seq: last['seq'] as number, hash: last['hash'] as string };
    }
    const result = await verifyAuditLog(log.active, { publicKeys: [await loadPublicKey(key.publicKeyPath)] });
    assert.deepEqual(result.findings, []);
    assert.equal(result.events, 200);
    // Any file of the log names the whole log.
    for (const name of [names[1]!, 'audit.checkpoints.jsonl']) {
      const again = await verifyAuditLog(join(log.logDir, name), {});
      assert.deepEqual([again.findings, again.events, again.files], [[], 200, names]);
    }
    // The active file alone is not a log from seq 1, but each file's own lines still check.
    assert.equal((await verifyAuditFile(log.active)).ok, false);
  });

  it('by time: a file older than maxAge is closed at the next write', async () => {
    let clock = Date.UTC(2025, 0, 1);
    const log = await writeSealedLog(root(), {
      key,
      events: 40,
      seal: { rotate: { maxAgeMs: HOUR }, now: () => clock },
      // Each batch of ten events is written 40 minutes after the one before.
      betweenBatches: () => (clock += 40 * 60_000),
    });
    const names = (await readdir(log.logDir)).filter((f) => f !== 'audit.checkpoints.jsonl').sort();
    assert.deepEqual(names, ['audit.000001.jsonl', 'audit.jsonl']);
    const result = await verifyAuditLog(log.active, { publicKeys: [await loadPublicKey(key.publicKeyPath)] });
    assert.deepEqual(result.findings, []);
    assert.equal(result.events, 40);
  });

  it('a restart continues the same log: the same file, the checkpoints numbered on', async () => {
    const r = root();
    await writeSealedLog(r, { key, events: 30, seal: { rotate: { maxBytes: 12 * 1024 } } });
    const log = await writeSealedLog(r, { key, events: 30, firstEvent: 31, seal: { rotate: { maxBytes: 12 * 1024 } } });
    const result = await verifyAuditLog(log.active, { publicKeys: [await loadPublicKey(key.publicKeyPath)], anchor: null });
    assert.deepEqual(result.findings, []);
    assert.equal(result.events, 60);
    const cps = (await readLines(join(log.logDir, 'audit.checkpoints.jsonl'))).map((l) => JSON.parse(l) as { n: number; reason: string });
    assert.deepEqual(cps.map((c) => c.n), cps.map((_, i) => i + 1));
    assert.equal(cps.filter((c) => c.reason === 'shutdown').length, 2);
  });

  it('a crash between renaming the old file and starting the new one: the next start starts it', async () => {
    const r = root();
    const log = await writeSealedLog(r, { key, events: 20 });
    // What a crash right after the rename leaves: no active file, its lines under the next number.
    await rename(log.active, join(log.logDir, 'audit.000001.jsonl'));
    const again = await writeSealedLog(r, { key, events: 10, firstEvent: 21 });
    const result = await verifyAuditLog(again.active, { publicKeys: [await loadPublicKey(key.publicKeyPath)] });
    assert.deepEqual(result.findings, []);
    assert.deepEqual(result.files, ['audit.000001.jsonl', 'audit.jsonl']);
    assert.equal(result.events, 30);
  });

  it('the sink continues the chain in the file the hook hands over', async () => {
    const r = root();
    await mkdir(r);
    const active = join(r, 'audit.jsonl');
    const seal = await openAuditSeal({ file: active, rotate: { maxBytes: 4096 } });
    const heads: number[] = [];
    const sink = await openJsonlAuditSink(active, {
      batchDelayMs: 0,
      afterBatch: (head, bytes) => {
        heads.push(head.seq);
        assert.ok(bytes > 0);
        return seal.afterBatch(head, bytes);
      },
    });
    for (let i = 1; i <= 30; i++) {
      sink.record(statementEvent(i));
      if (i % 3 === 0) await sink.flush();
    }
    await sink.close();
    await seal.close();
    assert.deepEqual(heads, heads.slice().sort((a, b) => a - b), 'heads come in order');
    const result = await verifyAuditLog(active, {});
    assert.deepEqual(result.findings, []);
    assert.equal(result.events, 30);
    assert.ok(result.files.length > 2);
  });
});
