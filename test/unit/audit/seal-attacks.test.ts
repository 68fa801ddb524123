/**
 * Each way of doctoring an audit log that a hash chain alone lets through, done to real files
 * written by the sink and the seal: `verifyAuditLog` must name the attack and where it is.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPublicKey } from '../../../src/audit/signing-key.ts';
import { verifyAuditLog, type AuditLogVerification, type VerifyLogOptions } from '../../../src/audit/verify-log.ts';
import { openEmbeddedAnchorStore } from '../../../src/store/anchors-embedded.ts';
import type { AuditAnchor } from '../../../src/store/anchors.ts';
import { tempDir } from './helpers.ts';
import { copyLog, makeKey, readLines, rechain, writeLines, writeSealedLog, type KeyPair, type SealedLog } from './seal-helpers.ts';

const SETTINGS = { rotate: { maxBytes: 96 * 1024 }, checkpointEvery: { events: 25, intervalMs: 3_600_000 } };
const EVENTS = 420;

describe('verifyAuditLog against attacks on real files', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let key: KeyPair;
  let log: SealedLog;
  let other: SealedLog;
  let anchor: AuditAnchor | null;
  let options: VerifyLogOptions;
  let n = 0;

  before(async () => {
    tmp = await tempDir();
    key = await makeKey(tmp.dir);
    log = await writeSealedLog(join(tmp.dir, 'run'), { key, events: EVENTS, seal: SETTINGS });
    // Another run: same key, same settings, different events: its files are as valid as ours.
    other = await writeSealedLog(join(tmp.dir, 'other'), { key, events: EVENTS, seal: SETTINGS, firstEvent: 100_000 });
    const store = await openEmbeddedAnchorStore(log.stateDir);
    anchor = await store.getAnchor(log.anchorId);
    await store.close();
    options = { publicKeys: [await loadPublicKey(key.publicKeyPath)], anchor };
  });
  after(async () => {
    await tmp.cleanup();
  });

  const attack = async (): Promise<SealedLog> => copyLog(log, join(tmp.dir, `case-${n++}`));
  const file = (l: SealedLog, name: string) => join(l.logDir, name);
  const first = (result: AuditLogVerification) => {
    assert.equal(result.ok, false, 'the attack went unnoticed');
    return result.findings[0]!;
  };
  /** Where seq lives in the untouched log: file name and 1-based line. */
  const whereIs = async (seq: number): Promise<{ file: string; line: number }> => {
    for (const name of (await readdir(log.logDir)).filter((f) => f !== 'audit.checkpoints.jsonl')) {
      const lines = await readLines(file(log, name));
      const index = lines.findIndex((l) => (JSON.parse(l) as { seq: number }).seq === seq);
      if (index >= 0) return { file: name, line: index + 1 };
    }
    throw new Error(`seq ${seq} is in no file`);
  };
  const checkpoints = async (l: SealedLog) => (await readLines(file(l, 'audit.checkpoints.jsonl'))).map((c) => JSON.parse(c) as { seq: number; reason: string; n: number });

  it('writes rotated files, checkpoints and an anchor, and verifies them untouched', async () => {
    const names = (await readdir(log.logDir)).sort();
    assert.deepEqual(names, ['audit.000001.jsonl', 'audit.000002.jsonl', 'audit.000003.jsonl', 'audit.checkpoints.jsonl', 'audit.jsonl']);
    assert.ok((await readLines(log.active)).length >= 60, 'the active file has room for a 50-line cut');
    const result = await verifyAuditLog(log.active, options);
    assert.deepEqual(result.findings, []);
    assert.equal(result.ok, true);
    assert.equal(result.events, EVENTS);
    assert.deepEqual(result.files, ['audit.000001.jsonl', 'audit.000002.jsonl', 'audit.000003.jsonl', 'audit.jsonl']);
    const cps = await checkpoints(log);
    assert.equal(result.checkpoints.count, cps.length);
    assert.equal(result.checkpoints.signaturesChecked, true);
    assert.equal(cps.at(-1)?.reason, 'shutdown');
    assert.equal(cps.filter((c) => c.reason === 'rotation').length, 3);
    assert.equal(anchor?.seq, result.lastSeq);
    assert.equal(anchor?.head, result.lastHash);
    assert.equal(result.anchor, 'matches');
  });

  it('an edited line: names the file and line', async () => {
    const l = await attack();
    const lines = await readLines(file(l, 'audit.000002.jsonl'));
    lines[4] = lines[4]!.replace(/SELECT (\d+)/, 'SELECT 999999');
    await writeLines(file(l, 'audit.000002.jsonl'), lines);
    const result = await verifyAuditLog(l.active, options);
    assert.deepEqual(
      result.findings.map((f) => [f.kind, f.file, f.line]),
      [['edited', 'audit.000002.jsonl', 5]],
    );
    assert.match(first(result).message, /line edited/);
  });

  it('an edit with the chain recomputed by a script: the signed checkpoints show where it was rebuilt', async () => {
    const l = await attack();
    const names = ['audit.000002.jsonl', 'audit.000003.jsonl', 'audit.jsonl'];
    const edited = await readLines(file(l, names[0]!));
    const seq = (JSON.parse(edited[39]!) as { seq: number }).seq;
    edited[39] = edited[39]!.replace(/"statement":"SELECT \d+/, '"statement":"SELECT 1');
    let prev = rechain(edited, 39);
    await writeLines(file(l, names[0]!), edited);
    for (const name of names.slice(1)) {
      const lines = await readLines(file(l, name));
      prev = rechain(lines, 0, prev);
      await writeLines(file(l, name), lines);
    }
    // The chain alone is whole again: the old verify passes it.
    const result = await verifyAuditLog(l.active, options);
    const cps = await checkpoints(log);
    const lastGood = cps.filter((c) => c.seq < seq).at(-1)!;
    const firstBad = cps.find((c) => c.seq >= seq)!;
    const finding = first(result);
    assert.equal(finding.kind, 'rebuilt');
    assert.deepEqual([finding.file, finding.line], Object.values(await whereIs(firstBad.seq)));
    const good = await whereIs(lastGood.seq);
    assert.match(finding.message, new RegExp(`chain rebuilt after ${good.file.replace(/\./g, '\\.')} line ${good.line}\\b`));
    assert.match(finding.message, new RegExp(`checkpoint ${firstBad.n}\\b`));
    assert.ok(!result.findings.some((f) => f.kind === 'edited'), 'every line matches its own hash');
    // The anchor, kept in the state store, disagrees too.
    assert.ok(result.findings.some((f) => f.kind === 'rebuilt' && /anchor/.test(f.message)));
  });

  it('a rebuilt chain with the checkpoints after the edit deleted too: the anchor shows it', async () => {
    const l = await attack();
    const lines = await readLines(l.active);
    const seq = (JSON.parse(lines[9]!) as { seq: number }).seq;
    lines[9] = lines[9]!.replace(/"statement":"SELECT \d+/, '"statement":"SELECT 1');
    rechain(lines, 9);
    await writeLines(l.active, lines);
    const cpFile = file(l, 'audit.checkpoints.jsonl');
    await writeLines(cpFile, (await readLines(cpFile)).filter((c) => (JSON.parse(c) as { seq: number }).seq < seq));
    assert.equal((await verifyAuditLog(l.active, { publicKeys: options.publicKeys })).ok, true, 'files alone cannot show it');
    const finding = first(await verifyAuditLog(l.active, options));
    assert.equal(finding.kind, 'rebuilt');
    assert.deepEqual([finding.file, finding.line], ['audit.jsonl', lines.length]);
    assert.match(finding.message, /the anchor/);
  });

  it('the last 50 lines cut: the shutdown checkpoint names what is missing', async () => {
    const l = await attack();
    const lines = await readLines(l.active);
    await writeLines(l.active, lines.slice(0, -50));
    const result = await verifyAuditLog(l.active, options);
    const finding = first(result);
    assert.equal(finding.kind, 'truncated');
    assert.deepEqual([finding.file, finding.line], ['audit.jsonl', lines.length - 50]);
    assert.match(finding.message, /truncated after line \d+ of audit\.jsonl/);
    assert.match(finding.message, /50 lines/);
  });

  it('the last 50 lines and their checkpoints cut: the anchor in the state store still shows it', async () => {
    const l = await attack();
    const lines = await readLines(l.active);
    const kept = lines.slice(0, -50);
    await writeLines(l.active, kept);
    const lastSeq = (JSON.parse(kept.at(-1)!) as { seq: number }).seq;
    const cpFile = file(l, 'audit.checkpoints.jsonl');
    await writeLines(cpFile, (await readLines(cpFile)).filter((c) => (JSON.parse(c) as { seq: number }).seq <= lastSeq));
    const withoutAnchor = await verifyAuditLog(l.active, { publicKeys: options.publicKeys });
    assert.equal(withoutAnchor.ok, true, 'files alone cannot show a cut made at a checkpoint (this is what the anchor is for)');
    const result = await verifyAuditLog(l.active, options);
    const finding = first(result);
    assert.equal(finding.kind, 'truncated');
    assert.deepEqual([finding.file, finding.line], ['audit.jsonl', kept.length]);
    assert.match(finding.message, /anchor/);
    assert.match(finding.message, /50 lines/);
  });

  it("a rotated file replaced by another run's: swapped", async () => {
    const l = await attack();
    await writeFile(file(l, 'audit.000002.jsonl'), await readFile(file(other, 'audit.000002.jsonl')));
    const result = await verifyAuditLog(l.active, options);
    const finding = first(result);
    assert.equal(finding.kind, 'swapped');
    assert.equal(finding.file, 'audit.000002.jsonl');
    assert.match(finding.message, /another audit stream/);
  });

  it("the active file replaced by another run's: swapped", async () => {
    const l = await attack();
    await writeFile(l.active, await readFile(other.active));
    const finding = first(await verifyAuditLog(l.active, options));
    assert.equal(finding.kind, 'swapped');
    assert.equal(finding.file, 'audit.jsonl');
  });

  it("every file and the checkpoints replaced by another run's (same key): only the anchor can tell, and does", async () => {
    const l = await attack();
    await rm(l.logDir, { recursive: true });
    await copyLog(other, join(l.logDir, '..'));
    assert.equal((await verifyAuditLog(l.active, { publicKeys: options.publicKeys })).ok, true);
    const finding = first(await verifyAuditLog(l.active, options));
    assert.equal(finding.kind, 'swapped');
    assert.match(finding.message, /anchor/);
  });

  for (const gone of ['audit.000002.jsonl', 'audit.000001.jsonl']) {
    it(`a deleted rotated file (${gone}): missing, said once`, async () => {
      const l = await attack();
      await rm(file(l, gone));
      const result = await verifyAuditLog(l.active, options);
      assert.deepEqual(
        result.findings.map((f) => [f.kind, f.file]),
        [['missing', gone]],
      );
    });
  }

  it('the oldest files removed by retention, declared with fromFile: whole, and said in a note', async () => {
    const l = await attack();
    await rm(file(l, 'audit.000001.jsonl'));
    const result = await verifyAuditLog(l.active, { ...options, fromFile: 2 });
    assert.deepEqual(result.findings, []);
    assert.ok(result.notes.some((note) => /files before audit\.000002\.jsonl were not expected/.test(note)), result.notes.join('\n'));
    await rm(file(l, 'audit.000002.jsonl'));
    assert.deepEqual((await verifyAuditLog(l.active, { ...options, fromFile: 2 })).findings.map((f) => [f.kind, f.file]), [['missing', 'audit.000002.jsonl']]);
  });

  it('a checkpoint whose head was changed: its signature fails', async () => {
    const l = await attack();
    const cpFile = file(l, 'audit.checkpoints.jsonl');
    const cps = await readLines(cpFile);
    cps[2] = cps[2]!.replace(/"head":"[0-9a-f]/, '"head":"0');
    await writeLines(cpFile, cps);
    const result = await verifyAuditLog(l.active, options);
    const finding = first(result);
    assert.equal(finding.kind, 'forged');
    assert.deepEqual([finding.file, finding.line], ['audit.checkpoints.jsonl', 3]);
    assert.match(finding.message, /signature/);
  });

  it('a checkpoint removed from the middle: the checkpoints no longer link up', async () => {
    const l = await attack();
    const cpFile = file(l, 'audit.checkpoints.jsonl');
    const cps = await readLines(cpFile);
    cps.splice(3, 1);
    await writeLines(cpFile, cps);
    const finding = first(await verifyAuditLog(l.active, options));
    assert.equal(finding.kind, 'forged');
    assert.deepEqual([finding.file, finding.line], ['audit.checkpoints.jsonl', 4]);
    assert.match(finding.message, /checkpoint 5 where 4 was expected/);
  });

  it('another public key: every checkpoint is foreign', async () => {
    const stranger = await makeKey(tmp.dir, 'stranger.key');
    const result = await verifyAuditLog(log.active, { publicKeys: [await loadPublicKey(stranger.publicKeyPath)] });
    const finding = first(result);
    assert.equal(finding.kind, 'forged');
    assert.match(finding.message, new RegExp(`signed by key ${key.keyId}, which is not a given public key`));
  });

  it('without a public key, checkpoints are compared but not trusted, and it says so', async () => {
    const result = await verifyAuditLog(log.active, {});
    assert.equal(result.ok, true);
    assert.equal(result.checkpoints.signaturesChecked, false);
    assert.ok(result.notes.some((note) => /signatures were not checked/.test(note)));
  });
});
