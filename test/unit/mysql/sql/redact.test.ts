import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { redactSecrets, REDACTED } from '../../../../src/engines/mysql/sql/redact.ts';

describe('redactSecrets', () => {
  const cases: [string, string][] = [
    ["CREATE USER 'app'@'%' IDENTIFIED BY 's3cret!'", `CREATE USER ${REDACTED}@${REDACTED} IDENTIFIED BY ${REDACTED}`],
    ["ALTER USER app IDENTIFIED VIA ed25519 USING PASSWORD('hunter2')", `ALTER USER app IDENTIFIED VIA ed25519 USING PASSWORD(${REDACTED})`],
    ["SET PASSWORD FOR bob = PASSWORD(\"it's\")", `SET PASSWORD FOR bob = PASSWORD(${REDACTED})`],
    ["CHANGE MASTER TO MASTER_PASSWORD='x\\'y', MASTER_HOST='h'", `CHANGE MASTER TO MASTER_PASSWORD=${REDACTED}, MASTER_HOST=${REDACTED}`],
    ["SELECT AES_ENCRYPT(card, 'k3y') FROM t", `SELECT AES_ENCRYPT(card, ${REDACTED}) FROM t`],
    ["SELECT AES_DECRYPT(card, 0xDEADBEEF) FROM t", `SELECT AES_DECRYPT(card, ${REDACTED}) FROM t`],
  ];
  for (const [sql, expected] of cases) {
    it(`redacts: ${sql.slice(0, 40)}`, () => assert.equal(redactSecrets(sql), expected));
  }

  it('redacts a literal cut short by the end of a recorded prefix', () => {
    assert.equal(redactSecrets("ALTER USER u IDENTIFIED BY 'hunt"), `ALTER USER u IDENTIFIED BY ${REDACTED}`);
    assert.equal(redactSecrets("SET PASSWORD = PASSWORD(\"it's"), `SET PASSWORD = PASSWORD(${REDACTED}`);
    assert.equal(redactSecrets("ALTER USER u IDENTIFIED BY 'x\\"), `ALTER USER u IDENTIFIED BY ${REDACTED}`);
  });

  it('leaves ordinary statements untouched (and unallocated)', () => {
    const sql = "SELECT * FROM orders WHERE item = 'apple'";
    assert.equal(redactSecrets(sql), sql);
  });

  it('property: a secret literal never survives in a statement that sets a password', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/['"\\]/.test(s) && s.trim().length > 0), (secret) => {
        const out = redactSecrets(`ALTER USER u IDENTIFIED BY '${secret}'`);
        assert.ok(!out.includes(`'${secret}'`), out);
      }),
    );
  });
});
