/**
 * What the seal does when meshgate starts on audit files that disagree with their signed
 * checkpoints or the anchor: it refuses to bury the damage under new lines, and says what
 * to run. Files moved aside as a whole start a new log that records the one it replaces.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { openAuditSeal } from '../../../src/audit/seal.ts';
import { loadPublicKey, loadSigningKey } from '../../../src/audit/signing-key.ts';
import { verifyAuditLog } from '../../../src/audit/verify-log.ts';
import { openEmbeddedAnchorStore } from '../../../src/store/anchors-embedded.ts';
import { tempDir } from './helpers.ts';
import { makeKey, readLines, writeLines, writeSealedLog, type KeyPair } from './seal-helpers.ts';

describe('starting on an existing sealed log', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let key: KeyPair;
  let n = 0;
  const root = () => join(tmp.dir, `s${n++}`);
  before(async () => {
    tmp = await tempDir();
    key = await makeKey(tmp.dir);
  });
  after(async () => {
    await tmp.cleanup();
  });

  const reopen = async (r: string, warnings: string[] = []) => {
    const store = await openEmbeddedAnchorStore(join(r, 'state'));
    const active = join(r, 'logs', 'audit.jsonl');
    try {
      const seal = await openAuditSeal({
        file: active,
        signer: await loadSigningKey(key.privateKeyPath, { auditFile: active }),
        anchors: { store, id: 'replica-a:audit.jsonl' },
        onWarning: (message) => warnings.push(message),
      });
      await seal.close();
    } finally {
      await store.close();
    }
  };
  const refused = (pattern: RegExp) => (error: unknown) => {
    assert.ok(isMeshgateError(error), String(error));
    assert.equal(error.code, 'MG_AUDIT_UNAVAILABLE');
    assert.match(error.message, pattern);
    assert.match(error.message, /meshgate audit verify/);
    return true;
  };

  it('refuses a log cut short behind the anchor and the checkpoints', async () => {
    const r = root();
    const log = await writeSealedLog(r, { key, events: 80 });
    await writeLines(log.active, (await readLines(log.active)).slice(0, -50));
    await assert.rejects(reopen(r), refused(/ends at seq 30/));
  });

  it('refuses a log cut short with its checkpoints trimmed too: the anchor still knows', async () => {
    const r = root();
    const log = await writeSealedLog(r, { key, events: 80, perBatch: 80 });
    await writeLines(log.active, (await readLines(log.active)).slice(0, -50));
    await rm(join(log.logDir, 'audit.checkpoints.jsonl'));
    await assert.rejects(reopen(r), refused(/anchor/));
  });

  it('refuses a log whose last checkpoint names a line that was rewritten', async () => {
    const r = root();
    const log = await writeSealedLog(r, { key, events: 20, anchor: false });
    const lines = await readLines(log.active);
    // Rebuilt from scratch with a valid chain: a different file under the same name.
    await writeSealedLog(join(r, 'fake'), { key, events: 20, firstEvent: 500, anchor: false });
    await rename(join(r, 'fake', 'logs', 'audit.jsonl'), log.active);
    assert.equal(lines.length, 20);
    await assert.rejects(reopen(r), refused(/checkpoint/));
  });

  it('refuses checkpoints left behind when the audit files were moved away', async () => {
    const r = root();
    const log = await writeSealedLog(r, { key, events: 10, anchor: false });
    await rm(log.active);
    await assert.rejects(reopen(r), refused(/checkpoints/));
  });

  it('files moved aside as a whole: a new log starts, recording the anchor it replaces', async () => {
    const r = root();
    const log = await writeSealedLog(r, { key, events: 10 });
    await mkdir(join(r, 'archive'));
    await rename(log.logDir, join(r, 'archive', 'logs'));
    const warnings: string[] = [];
    const again = await writeSealedLog(r, { key, events: 5, firstEvent: 11 });
    await reopen(r, warnings);
    const first = JSON.parse((await readLines(join(again.logDir, 'audit.checkpoints.jsonl')))[0]!) as { supersedes?: { seq: number } };
    assert.equal(first.supersedes?.seq, 10);
    const store = await openEmbeddedAnchorStore(again.stateDir);
    const anchor = await store.getAnchor(again.anchorId);
    await store.close();
    const result = await verifyAuditLog(again.active, { publicKeys: [await loadPublicKey(key.publicKeyPath)], anchor });
    assert.deepEqual(result.findings, []);
    assert.equal(result.events, 5);
    assert.deepEqual(warnings, [], 'reopening the new log is quiet');
  });
});
