import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import fc from 'fast-check';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { generateSigningKey, loadPublicKey, loadSigningKey } from '../../../src/audit/signing-key.ts';
import { CHECKPOINT_GENESIS, openCheckpoint, signCheckpoint, type CheckpointFields } from '../../../src/audit/checkpoint.ts';
import { tempDir } from './helpers.ts';

const configInvalid = (pattern: RegExp) => (error: unknown) => {
  assert.ok(isMeshgateError(error), String(error));
  assert.equal(error.code, 'MG_CONFIG_INVALID');
  assert.match(error.message, pattern);
  return true;
};

describe('audit signing keys', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
    await mkdir(tmp.file('keys'));
    await mkdir(tmp.file('logs'));
  });
  after(async () => {
    await tmp.cleanup();
  });

  it('generates an Ed25519 key readable by its owner only, and a public key beside it', async () => {
    const made = await generateSigningKey(tmp.file('keys/a.key'));
    assert.equal(made.publicKeyPath, tmp.file('keys/a.key.pub'));
    assert.match(made.keyId, /^[0-9a-f]{16}$/);
    assert.equal((await stat(made.privateKeyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(made.publicKeyPath)).mode & 0o777, 0o644);
    const signer = await loadSigningKey(made.privateKeyPath, { auditFile: tmp.file('logs/audit.jsonl') });
    const verifier = await loadPublicKey(made.publicKeyPath);
    assert.equal(signer.keyId, made.keyId);
    assert.equal(verifier.keyId, made.keyId);
    const data = Buffer.from('checkpoint');
    assert.equal(verifier.verify(data, signer.sign(data)), true);
    assert.equal(verifier.verify(Buffer.from('checkpoinT'), signer.sign(data)), false);
    assert.equal(verifier.verify(data, 'not base64url!'), false);
  });

  it('never overwrites an existing key', async () => {
    await generateSigningKey(tmp.file('keys/b.key'));
    await assert.rejects(generateSigningKey(tmp.file('keys/b.key')), /already exists/);
  });

  it('refuses a key others can read, one inside the audit directory, and one that is not Ed25519', async () => {
    const made = await generateSigningKey(tmp.file('keys/c.key'));
    await chmod(made.privateKeyPath, 0o640);
    await assert.rejects(loadSigningKey(made.privateKeyPath), configInvalid(/chmod 600/));
    const inside = await generateSigningKey(tmp.file('logs/d.key'));
    await assert.rejects(loadSigningKey(inside.privateKeyPath, { auditFile: tmp.file('logs/audit.jsonl') }), configInvalid(/apart from the audit files/));
    const rsa = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(tmp.file('keys/ec.key'), rsa, { mode: 0o600 });
    await assert.rejects(loadSigningKey(tmp.file('keys/ec.key')), configInvalid(/Ed25519/));
    await assert.rejects(loadSigningKey(tmp.file('keys/none.key')), configInvalid(/meshgate audit keygen/));
    await assert.rejects(loadPublicKey(tmp.file('keys/ec.key')), configInvalid(/Ed25519 public key/));
  });
});

describe('checkpoint lines', () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const signer = { keyId: '0123456789abcdef', sign: (data: Buffer) => crypto.sign(null, data, privateKey).toString('base64url') };
  const fields: CheckpointFields = {
    n: 1,
    stream: 'a'.repeat(64),
    file: 1,
    seq: 42,
    head: 'b'.repeat(64),
    time: '2025-01-01T00:00:00.000Z',
    reason: 'events',
    prev: CHECKPOINT_GENESIS,
  };
  const verify = (data: Buffer, sig: string) => crypto.verify(null, data, publicKey, Buffer.from(sig, 'base64url'));

  it('opens what it signs, and the signature covers every field', () => {
    const { line, hash } = signCheckpoint(fields, signer);
    assert.ok(line.endsWith('}\n'));
    const opened = openCheckpoint(Buffer.from(line.trimEnd()));
    assert.ok(!('problem' in opened), JSON.stringify(opened));
    assert.deepEqual(opened.checkpoint, { ...fields, key: signer.keyId });
    assert.equal(opened.hash, hash);
    assert.equal(verify(opened.signed, opened.sig), true);
    for (const [from, to] of [['"seq":42', '"seq":43'], ['"file":1', '"file":2'], ['"reason":"events"', '"reason":"shutdown"']] as const) {
      const edited = openCheckpoint(Buffer.from(line.trimEnd().replace(from, to)));
      assert.ok(!('problem' in edited));
      assert.equal(verify(edited.signed, edited.sig), false, `${to} is signed`);
    }
  });

  it('names what is wrong with a line that is not a checkpoint, and never throws', () => {
    assert.match((openCheckpoint(Buffer.from('{}')) as { problem: string }).problem, /signature/);
    assert.match((openCheckpoint(Buffer.from('nope')) as { problem: string }).problem, /not a JSON object/);
    const { line } = signCheckpoint(fields, signer);
    const noSeq = line.trimEnd().replace('"seq":42,', '');
    assert.match((openCheckpoint(Buffer.from(noSeq)) as { problem: string }).problem, /seq/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(line.length), (noise, at) => {
        const bytes = Buffer.concat([Buffer.from(line.slice(0, at)), Buffer.from(noise), Buffer.from(line.slice(at))]);
        const opened = openCheckpoint(bytes);
        if (!('problem' in opened) && noise.length > 0) assert.equal(verify(opened.signed, opened.sig) && opened.hash === signCheckpoint(fields, signer).hash, false);
      }),
      { numRuns: 500 },
    );
  });
});
