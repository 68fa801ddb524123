/**
 * What the audit records of a statement's text: a prefix cut on a character, the marker, the
 * whole text's length and SHA-256 (none where it may carry a credential), every verb.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { statementRecord, StatementText } from '../../../src/engines/mysql/statement-text.ts';

const textOf = (sql: string | Buffer) => {
  const payload = Buffer.concat([Buffer.of(0x03), typeof sql === 'string' ? Buffer.from(sql) : sql]);
  const command = decodeCommand(payload);
  assert.ok(command.kind === 'relay' && command.text !== null);
  return new StatementText(payload, command.text);
};
const sha256 = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('statementRecord', () => {
  it('keeps a short statement whole, with its length, hash and verbs', () => {
    const sql = "SELECT 'é'; DELETE FROM t";
    assert.deepEqual(statementRecord(textOf(sql), 64 * 1024), { text: sql, truncated: false, bytes: Buffer.byteLength(sql), sha256: sha256(sql), verbs: ['SELECT', 'DELETE'] });
  });

  it('keeps a prefix of the configured size, cut on a character, and says so', () => {
    const sql = `SELECT '${'é'.repeat(10)}'`;
    const record = statementRecord(textOf(sql), 10);
    assert.equal(record.truncated, true);
    assert.equal(record.text, "SELECT 'é", 'the é cut in two is left out');
    assert.equal(record.bytes, Buffer.byteLength(sql));
    assert.equal(record.sha256, sha256(sql));
    assert.deepEqual(statementRecord(textOf(sql), 0).text, '');
  });

  it('reads every verb of a statement past the codec\'s 64 KiB, with or without a ";" there', () => {
    const comment = `/*${'x'.repeat(70 * 1024)}*/`;
    const sql = `SELECT 1 ${comment}; DELETE FROM t`;
    const record = statementRecord(textOf(sql), 64 * 1024);
    assert.deepEqual(record.verbs, ['SELECT', 'DELETE']);
    assert.equal(record.text, sql.slice(0, 64 * 1024));
    assert.equal(record.truncated, true);
    assert.equal(record.sha256, sha256(sql));
    assert.deepEqual(statementRecord(textOf(`SELECT 1; INSERT INTO t VALUES ('${'y'.repeat(80 * 1024)}')`), 100).verbs, ['SELECT', 'INSERT']);
    assert.deepEqual(statementRecord(textOf(`SELECT 1; ${comment} UPDATE t SET a = 1`), 100).verbs, ['SELECT', 'UPDATE']);
    assert.deepEqual(statementRecord(textOf(`SELECT 1;${' '.repeat(70 * 1024)}DELETE FROM t`), 100).verbs, ['SELECT', 'DELETE']);
    // A statement longer than the codec decodes, in a charset other than UTF-8: the hash is of its bytes.
    const latin1 = Buffer.concat([Buffer.from("SELECT '"), Buffer.alloc(70 * 1024, 0xe9), Buffer.from("'")]);
    assert.equal(statementRecord(textOf(latin1), 64 * 1024).sha256, sha256(latin1));
  });

  it('keeps no hash of a text that may carry a credential, anywhere in it', () => {
    assert.equal(statementRecord(textOf("SELECT AES_ENCRYPT('x', 'k')"), 1024).sha256, null);
    const far = `SELECT 1 /*${'x'.repeat(70 * 1024)}*/, AES_DECRYPT(c, 'k') FROM t`;
    assert.equal(statementRecord(textOf(far), 1024).sha256, null);
    assert.equal(statementRecord(textOf("ALTER USER u IDENTIFIED BY 'secr"), 30).text.includes('secr'), false);
  });

  it('any prefix is a prefix of the text, at most as long as asked, and the hash is of every byte', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b))), fc.integer({ min: 0, max: 300 }), (sql, prefixBytes) => {
        const bytes = typeof sql === 'string' ? Buffer.from(sql) : sql;
        const record = statementRecord(textOf(bytes), prefixBytes);
        assert.equal(record.bytes, bytes.length);
        assert.equal(record.truncated, bytes.length > prefixBytes);
        if (record.sha256 !== null) assert.equal(record.sha256, sha256(bytes));
        if (typeof sql === 'string' && !/IDENTIFIED|PASSWORD|ENCRYPT|DECRYPT|SECRET/i.test(sql)) {
          assert.ok(sql.startsWith(record.text));
          assert.ok(Buffer.byteLength(record.text) <= Math.max(prefixBytes, record.truncated ? 0 : bytes.length));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
