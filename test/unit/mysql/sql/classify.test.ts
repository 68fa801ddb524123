import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { serverFlavor, statementVerb, type ServerFlavor } from '../../../../src/engines/mysql/sql/classify.ts';

const MARIADB_11: ServerFlavor = { version: 110402, mariadb: true };
const MYSQL_8: ServerFlavor = { version: 80036, mariadb: false };

describe('statementVerb', () => {
  const table: Array<[string, string | null, ServerFlavor?]> = [
    ['SELECT 1', 'SELECT'],
    ['select * from t', 'SELECT'],
    ['  \t\r\n\f\vInsert INTO t VALUES (1)', 'INSERT'],
    ['(SELECT 1) UNION (SELECT 2)', 'SELECT'],
    ['/* hello */ delete from t', 'DELETE'],
    ['/**/update t set a=1', 'UPDATE'],
    ['-- note\nREPLACE INTO t VALUES (1)', 'REPLACE'],
    ['--\tnote\nSHOW TABLES', 'SHOW'],
    ['# note\ncall p()', 'CALL'],
    ['/* a */ -- b\n # c\n  with x as (select 1) select * from x', 'WITH'],
    ['SET NAMES utf8mb4', 'SET'],
    ['LOAD DATA LOCAL INFILE', 'LOAD'],
    ['load_file', 'LOAD_FILE'],
    ['SELECT', 'SELECT'],
    // Executable comments run as SQL, so their inside decides.
    ['/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;', 'SET'],
    ['/*!SELECT 1*/', 'SELECT'],
    ['/*!DELETE FROM t*/ /* SELECT */', 'DELETE'],
    ['/*! */ DROP TABLE t', 'DROP'],
    ['/*!50000*/ DROP TABLE t', 'DROP'],
    ['/*M!100100 SHOW */', 'SHOW'],
    ['/*M!DROP TABLE t*/ SELECT 1', 'DROP'],
    ['/*!1234 SELECT */', null], // four digits are not a version: '1234' is the first token
    ['/*!50000SELECT*/', 'SELECT'],
    // Whether a six-digit version runs depends on the server.
    ['/*!999999 DROP TABLE t */ SELECT 1', null],
    ['/*!999999 DROP TABLE t */ SELECT 1', 'SELECT', MARIADB_11],
    ['/*!110402 DROP TABLE t */ SELECT 1', 'DROP', MARIADB_11],
    ['/*!110403 DROP TABLE t */ SELECT 1', 'SELECT', MARIADB_11],
    ['/*!80037 DROP TABLE t */ SELECT 1', 'SELECT', MYSQL_8],
    ['/*!80036 DROP TABLE t */ SELECT 1', 'DROP', MYSQL_8],
    ['/*M!DROP TABLE t*/ SELECT 1', 'SELECT', MYSQL_8],
    ['/*M!100000 DROP TABLE t */ SELECT 1', 'DROP'],
    ['/*M!100400 DROP TABLE t */ SELECT 1', 'DROP'],
    ['/*M!100401 DROP TABLE t */ SELECT 1', null],
    // MariaDB skips MySQL 5.7+ versions (50700-99999) unless the comment is MariaDB's own.
    ['/*!50700 DROP TABLE t */ SELECT 1', 'SELECT'],
    ['/*!99999 DROP TABLE t */ SELECT 1', 'SELECT', MARIADB_11],
    ['/*!50699 DROP TABLE t */ SELECT 1', 'DROP'],
    ['/*M!50701 DROP TABLE t */ SELECT 1', 'DROP'],
    ['/*!50701 DROP TABLE t */ SELECT 1', 'DROP', MYSQL_8],
    // A skipped versioned comment may hold one comment of its own: the first '*/' is not its end.
    ['/*!50700 /* x */ DROP TABLE t */ SELECT 1', null],
    ['/*!999999 /* x */ DROP TABLE t */ SELECT 1', null, MARIADB_11],
    // Cannot tell: null.
    ['', null],
    ['   ', null],
    [';', null],
    ['123', null],
    ['@x', null],
    ['{call p()}', null],
    ['--x', null],
    ['-- comment without end', null],
    ['/* unterminated SELECT', null],
    ['/*! unterminated', 'UNTERMINATED'],
    ['/*!40101 /* nested */ SET */', null],
    ['/*! SELECT 1 /* inner */ */', 'SELECT'],
    ['#', null],
    ['x'.repeat(65), null],
    ['x'.repeat(64), 'X'.repeat(64)],
    [' '.repeat(256) + 'SELECT', null],
    ['/*' + ' '.repeat(300) + '*/ SELECT', null],
    [' '.repeat(250) + 'SELECT 1', null],
    [' '.repeat(249) + 'SELECT 1', 'SELECT'],
    [' '.repeat(250) + 'SELECT', 'SELECT'],
    [' '.repeat(254) + '--x SELECT', null],
  ];
  for (const [sql, verb, server] of table) {
    const label = JSON.stringify(sql.length > 60 ? sql.slice(0, 30) + '…' + sql.slice(-20) : sql);
    it(`${label}${server ? ` on ${server.mariadb ? 'MariaDB' : 'MySQL'} ${server.version}` : ''} → ${verb}`, () => {
      assert.equal(statementVerb(sql, server), verb);
    });
  }

  it('never throws and returns an upper-case word or null', () => {
    const pieces = fc.constantFrom('/*', '*/', '/*!', '/*M!', '50000', '999999', '--', '-- ', '#', '\n', ' ', '(', 'select', 'x_1', ';');
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.array(fc.oneof(pieces, fc.string({ maxLength: 3 }))).map((p) => p.join(''))), (sql) => {
        const verb = statementVerb(sql);
        if (verb !== null) assert.match(verb, /^[A-Z][A-Z0-9_]{0,63}$/);
      }),
      { numRuns: 5000 },
    );
    assert.equal(statementVerb(null as unknown as string), null);
  });

  it('reads at most the first 256 characters', () => {
    const huge = '/*' + 'x'.repeat(10_000_000);
    const started = performance.now();
    for (let i = 0; i < 1000; i++) statementVerb(huge);
    assert.ok(performance.now() - started < 200);
  });
});

describe('serverFlavor', () => {
  it('reads the version from a greeting', () => {
    assert.deepEqual(serverFlavor('5.5.5-10.11.19-MariaDB-0+deb12u1'), { version: 101119, mariadb: true });
    assert.deepEqual(serverFlavor('11.4.2-MariaDB'), { version: 110402, mariadb: true });
    assert.deepEqual(serverFlavor('8.0.36'), { version: 80036, mariadb: false });
    assert.deepEqual(serverFlavor('5.7.44-log'), { version: 50744, mariadb: false });
    assert.equal(serverFlavor('MariaDB'), undefined);
    assert.equal(serverFlavor('10.11.123'), undefined);
  });
});
