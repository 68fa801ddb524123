import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { accountChange, accountChangeInBytes, MAY_CHANGE_ACCOUNT } from '../../../../src/engines/mysql/sql/accounts.ts';
import { serverFlavor } from '../../../../src/engines/mysql/sql/classify.ts';

const MARIADB = serverFlavor('5.5.5-10.11.19-MariaDB')!;
const hex = (sql: string) => Buffer.from(sql, 'latin1').toString('hex');
const refused = (sql: string) => accountChange(sql, MARIADB);

describe('accountChange: statements that change an account', () => {
  const cases: Array<[string, string, boolean?]> = [
    ["SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    ["set password for 'bob'@'%' = '*0123'", 'SET PASSWORD'],
    ["SET PASSWORD := OLD_PASSWORD('x')", 'SET PASSWORD'],
    ["SET @a = 1, PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    ["SET STATEMENT max_statement_time = 1 FOR SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    ["ALTER USER CURRENT_USER() IDENTIFIED BY 'x'", 'ALTER USER'],
    ["CREATE OR REPLACE USER IF NOT EXISTS bob@'%'", 'CREATE USER'],
    ['DROP USER IF EXISTS bob', 'DROP USER'],
    ['RENAME USER a TO b', 'RENAME USER'],
    ['GRANT SELECT ON *.* TO CURRENT_USER()', 'GRANT'],
    ['REVOKE ALL PRIVILEGES, GRANT OPTION FROM bob', 'REVOKE'],
    ['CREATE ROLE r', 'CREATE ROLE'],
    ['DROP ROLE IF EXISTS r', 'DROP ROLE'],
    ['SET DEFAULT ROLE NONE FOR bob', 'SET DEFAULT ROLE'],
    ["SET SESSION AUTHORIZATION 'bob'@'%'", 'SET SESSION AUTHORIZATION'],
    ["BINLOG 'AAAA'", 'BINLOG'],
    // Everywhere MariaDB could run them.
    ["SELECT 1; SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    ["SELECT 'é'; SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    // In latin1, 0xA0 is whitespace to MariaDB's lexer.
    ["SELECT 1;\u00a0SET\u00a0PASSWORD\u00a0=\u00a0PASSWORD('x')", 'SET PASSWORD'],
    ["/*!SET PASSWORD = PASSWORD('x')*/", 'SET PASSWORD'],
    ['/*M!100100 GRANT ALL ON *.* TO bob */', 'GRANT'],
    ['SELECT 1 /*! ; DROP USER bob */', 'DROP USER'],
    ['/*!50000GRANT ALL ON *.* TO bob*/', 'GRANT'],
    ["CREATE PROCEDURE p() BEGIN SELECT 1; SET PASSWORD = PASSWORD('x'); END", 'SET PASSWORD'],
    ["CREATE PROCEDURE p() SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    ["CREATE PROCEDURE p() MODIFIES SQL DATA ALTER USER CURRENT_USER() IDENTIFIED BY 'x'", 'ALTER USER'],
    ["CREATE TRIGGER t BEFORE UPDATE ON x FOR EACH ROW FOLLOWS u SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    ["CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SET DEFAULT ROLE NONE", 'SET DEFAULT ROLE'],
    ['CREATE PROCEDURE p() BEGIN DECLARE EXIT HANDLER FOR SQLSTATE \'42000\' DROP USER bob; END', 'DROP USER'],
    ["BEGIN NOT ATOMIC IF 1 THEN SET PASSWORD = PASSWORD('x'); END IF; END", 'SET PASSWORD'],
    ['CASE WHEN 1 THEN CREATE USER bob; END CASE', 'CREATE USER'],
    ["lbl: LOOP SET @a = 1, PASSWORD = PASSWORD('x'); END LOOP", 'SET PASSWORD'],
    ["UPDATE t SET a = 1; SET PASSWORD = PASSWORD('x')", 'SET PASSWORD'],
    // A word right after '.' or '@' names something; one after whitespace is a keyword again.
    ['SELECT 1.; GRANT ALL ON *.* TO bob', 'GRANT'],
    ['SELECT a. GRANT ALL ON *.* TO bob', 'GRANT'],
    ["CREATE TRIGGER t BEFORE UPDATE ON x FOR EACH ROW SET PASSWORD = 'x'", 'SET PASSWORD'],
    // The quotes under NO_BACKSLASH_ESCAPES and under ANSI_QUOTES.
    ["SELECT '\\'; GRANT ALL ON *.* TO bob; -- '", 'GRANT'],
    ["SELECT 'a\\'b', \"c\\\"; SET PASSWORD = PASSWORD('z'); -- \"", 'SET PASSWORD'],
    // In literals, which PREPARE and EXECUTE IMMEDIATE run.
    ["PREPARE s FROM 'SET PASSWORD = PASSWORD(''x'')'", 'SET PASSWORD', true],
    ["EXECUTE IMMEDIATE 'SET PASSWORD = PASSWORD(\\'x\\')'", 'SET PASSWORD', true],
    ["EXECUTE IMMEDIATE 'GR' 'ANT ALL ON *.* TO bob'", 'GRANT', true],
    ["EXECUTE IMMEDIATE 'G\\RANT ALL ON *.* TO bob'", 'GRANT', true],
    ["EXECUTE IMMEDIATE _latin1'DROP USER bob'", 'DROP USER', true],
    [`PREPARE s FROM 0x${hex('DROP USER bob')}`, 'DROP USER', true],
    [`PREPARE s FROM X'${hex("ALTER USER bob IDENTIFIED BY 'x'")}'`, 'ALTER USER', true],
    [`EXECUTE IMMEDIATE b'${[...Buffer.from('CREATE ROLE r')].map((b) => b.toString(2).padStart(8, '0')).join('')}'`, 'CREATE ROLE', true],
    ["SET @v = 'EXECUTE IMMEDIATE ''CREATE USER bob'''", 'CREATE USER', true],
    ["SET @v = 'lbl: BEGIN NOT ATOMIC GRANT r TO bob; END'", 'GRANT', true],
  ];
  for (const [sql, statement, inLiteral = false] of cases) {
    it(`refuses ${JSON.stringify(sql).slice(0, 100)}`, () => {
      assert.deepEqual(refused(sql), { statement, inLiteral });
    });
  }

  it('refuses literals nested deeper than it reads', () => {
    let sql = 'GRANT ALL ON *.* TO bob';
    for (let level = 0; level < 9; level++) sql = `EXECUTE IMMEDIATE '${sql.replaceAll("'", "''")}'`;
    assert.deepEqual(refused(sql), { statement: 'UNREADABLE', inLiteral: true });
    let harmless = 'SELECT 1';
    for (let level = 0; level < 9; level++) harmless = `EXECUTE IMMEDIATE '${harmless.replaceAll("'", "''")}'`;
    assert.equal(refused(harmless), null, 'nothing there that may change an account');
  });

  it('refuses an executable comment whose running depends on a server version it was not told', () => {
    assert.deepEqual(accountChange('/*!100500 GRANT ALL ON *.* TO bob */'), { statement: 'UNREADABLE', inLiteral: false });
    assert.deepEqual(accountChange('/*!100500 GRANT ALL ON *.* TO bob */', MARIADB), { statement: 'GRANT', inLiteral: false });
  });
});

describe('accountChange: ordinary statements pass', () => {
  const ordinary = [
    'SELECT 1',
    "SELECT user, role, password FROM accounts WHERE user = 'bob'",
    "UPDATE accounts SET password = PASSWORD('x'), role = 'r' WHERE user = 'bob'",
    "UPDATE a JOIN b ON (CASE WHEN a.x THEN 1 ELSE 2 END) = b.y SET password = 'x'",
    "INSERT INTO accounts SET user = 'bob', password = 'x'",
    "REPLACE INTO accounts SET password = 'x'",
    "LOAD DATA INFILE '/tmp/f' INTO TABLE accounts (user) SET password = 'x'",
    "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE password = 'x'",
    "CREATE TRIGGER t BEFORE UPDATE ON x FOR EACH ROW UPDATE y SET password = NEW.password",
    "CREATE TABLE t (user VARCHAR(10), role INT, password SET('a', 'b')) CHARACTER SET latin1",
    'ALTER TABLE t DROP user, ALTER role SET DEFAULT 1, RENAME user2',
    'ALTER TABLE t RENAME user',
    'SHOW CREATE USER bob',
    'SHOW GRANTS FOR CURRENT_USER',
    "SELECT PASSWORD('x'), CURRENT_USER(), t.grant, @password, @@session.role FROM t",
    'SELECT * FROM mysql.user',
    'SET ROLE r',
    'SET ROLE NONE',
    '/* SET PASSWORD = PASSWORD(1) */ SELECT 1',
    '-- GRANT ALL ON *.* TO bob\nSELECT 1',
    '# DROP USER bob\nSELECT 1',
    '/*!99999 GRANT ALL ON *.* TO bob */ SELECT 1',
    '/*!50700 GRANT ALL ON *.* TO bob */ SELECT 1',
    '/*m! GRANT ALL ON *.* TO bob */ SELECT 1',
    "SELECT 'please grant me access', 'then revoke it', \"set password later\"",
    "INSERT INTO todo VALUES ('Create user accounts for new hires'), ('drop users who left (all of them)')",
    "SELECT 'C:\\\\users\\\\role' AS path",
    "SELECT JSON_OBJECT('user', 'bob', 'role', 'reader', 'note', 'grant')",
    `SELECT 0x${hex('harmless bytes, not SQL at all')}`,
    "PREPARE s FROM 'SELECT user FROM accounts WHERE password = ?'",
  ];
  for (const sql of ordinary) {
    it(`passes ${JSON.stringify(sql).slice(0, 100)}`, () => assert.equal(refused(sql), null));
  }

  it('costs one regular expression on most statements', () => {
    assert.equal(MAY_CHANGE_ACCOUNT.test("SELECT id, name FROM users WHERE user_id = 42 AND roles = 'x'"), false);
    assert.equal(MAY_CHANGE_ACCOUNT.test('SELECT grant_id, password_hash FROM t'), false);
  });
});

describe('accountChangeInBytes: statements past the decoded prefix', () => {
  const decodedBytes = 64 * 1024;
  const check = (sql: string) => {
    const bytes = Buffer.from(sql, 'latin1');
    return accountChangeInBytes(bytes, bytes.toString('utf8', 0, decodedBytes), decodedBytes, () => bytes.toString('latin1'), MARIADB);
  };

  it('finds one far past the prefix, or cut in two by it', () => {
    const comment = `/*${'x'.repeat(70 * 1024)}*/`;
    assert.deepEqual(check(`SELECT 1 ${comment}; SeT PaSsWoRd = PASSWORD('x')`), { statement: 'SET PASSWORD', inLiteral: false });
    const pad = 'x'.repeat(decodedBytes - 'SELECT 1 /*'.length - '*/; GR'.length);
    const straddling = `SELECT 1 /*${pad}*/; GRANT ALL ON *.* TO bob`;
    assert.equal(straddling.indexOf('GRANT') < decodedBytes && straddling.indexOf('GRANT') + 5 > decodedBytes, true);
    assert.deepEqual(check(straddling), { statement: 'GRANT', inLiteral: false });
    assert.equal(check(`SELECT 1 ${comment}; SELECT 2`), null);
  });

  it('finds, past the prefix, what only a literal spells: hex, adjacent literals, escapes', () => {
    const comment = `/*${'x'.repeat(70 * 1024)}*/`;
    assert.deepEqual(check(`SELECT 1 ${comment}, X'${hex('GRANT ALL ON *.* TO me')}'`), { statement: 'GRANT', inLiteral: true });
    assert.deepEqual(check(`SELECT 1 ${comment}; PREPARE s FROM 0x${hex('DROP USER me')}`), { statement: 'DROP USER', inLiteral: true });
    assert.deepEqual(check(`SELECT 1 ${comment}; EXECUTE IMMEDIATE 'GR' /* */ 'ANT ALL ON *.* TO me'`), { statement: 'GRANT', inLiteral: true });
    assert.deepEqual(check(`SELECT 1 ${comment}; EXECUTE IMMEDIATE 'G\\RANT ALL ON *.* TO me'`), { statement: 'GRANT', inLiteral: true });
    assert.equal(check(`SELECT LENGTH('${'x'.repeat(80 * 1024)}') AS n`), null);
  });
});

/** Keywords in any case, as a client may write them. */
const anyCase = (word: string) =>
  fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((upper) => [...word].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

/** Between two tokens: whitespace and comments, some mentioning account statements themselves. */
const separator = fc
  .array(fc.constantFrom(' ', '\n', '\t', '/* c */', '/**/', '/* GRANT ALL */', '-- SET PASSWORD\n', '#DROP USER x\n'), { minLength: 1, maxLength: 3 })
  .map((parts) => (/^[ \n\t]/.test(parts[0]!) ? parts.join('') : ` ${parts.join('')}`));

const WORDS = new Set(['SET', 'PASSWORD', 'FOR', 'ALTER', 'USER', 'IDENTIFIED', 'BY', 'CREATE', 'OR', 'REPLACE', 'DROP', 'IF', 'EXISTS', 'RENAME', 'TO', 'GRANT', 'ALL', 'ON', 'REVOKE', 'FROM', 'ROLE', 'DEFAULT', 'SESSION', 'AUTHORIZATION', 'NONE']);
const ACCOUNT_STATEMENTS: readonly (readonly string[])[] = [
  ['SET', 'PASSWORD', '=', "PASSWORD('x')"],
  ['SET', 'PASSWORD', 'FOR', 'bob', '=', "'*AB'"],
  ['ALTER', 'USER', 'bob', 'IDENTIFIED', 'BY', "'x'"],
  ['CREATE', 'USER', 'bob'],
  ['CREATE', 'OR', 'REPLACE', 'USER', 'bob'],
  ['DROP', 'USER', 'IF', 'EXISTS', 'bob'],
  ['RENAME', 'USER', 'a', 'TO', 'b'],
  ['GRANT', 'ALL', 'ON', '*.*', 'TO', 'bob'],
  ['REVOKE', 'ALL', 'ON', '*.*', 'FROM', 'bob'],
  ['CREATE', 'ROLE', 'r'],
  ['DROP', 'ROLE', 'r'],
  ['SET', 'DEFAULT', 'ROLE', 'NONE'],
  ['SET', 'SESSION', 'AUTHORIZATION', 'bob'],
];

/** One account statement, tokens in any case with whitespace and comments between. */
const accountStatement = fc
  .constantFrom(...ACCOUNT_STATEMENTS)
  .chain((tokens) => fc.tuple(...tokens.map((t) => (WORDS.has(t) ? anyCase(t) : fc.constant(t))), fc.array(separator, { minLength: tokens.length, maxLength: tokens.length })))
  .map((parts) => {
    // Not parts.pop(): fast-check may map the same value again.
    const separators = parts.at(-1) as string[];
    return (parts.slice(0, -1) as string[]).map((token, i) => (i === 0 ? token : separators[i]! + token)).join('');
  });

/** Where one statement can hide and still be one statement: what PREPARE and EXECUTE IMMEDIATE run is one. */
const AS_ONE: readonly ((sql: string) => string)[] = [
  (sql) => sql,
  (sql) => `/*!${sql}*/`,
  (sql) => `/*M!100100 ${sql} */`,
  (sql) => `CREATE PROCEDURE p() BEGIN SELECT 1; ${sql}; END`,
  (sql) => `CREATE PROCEDURE p() ${sql}`,
  (sql) => `CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW ${sql}`,
  (sql) => `CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO ${sql}`,
  (sql) => `IF 1 THEN ${sql}; ELSE ${sql}; END IF`,
  (sql) => `BEGIN NOT ATOMIC DECLARE CONTINUE HANDLER FOR SQLEXCEPTION ${sql}; END`,
  (sql) => `SET STATEMENT max_statement_time = 1 FOR ${sql}`,
];
/** Where a statement can hide in a text a client sends. */
const ANYWHERE: readonly ((sql: string) => string)[] = [
  ...AS_ONE,
  (sql) => `SELECT 1; ${sql}`,
  (sql) => `UPDATE t SET a = 'é';\n${sql}; SELECT 2`,
  (sql) => `SELECT 1 /*!; ${sql} */`,
  (sql) => `PREPARE s FROM '${sql.replaceAll("'", "''")}'`,
  (sql) => `EXECUTE IMMEDIATE '${sql.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`,
  (sql) => `SET @v = '${sql.replaceAll("'", "''")}'; PREPARE s FROM @v`,
  (sql) => `EXECUTE IMMEDIATE 0x${hex(sql)}`,
];
const hidden = fc
  .tuple(accountStatement, fc.integer({ min: 0, max: AS_ONE.length - 1 }), fc.integer({ min: 0, max: ANYWHERE.length - 1 }))
  .map(([sql, inner, outer]) => ANYWHERE[outer]!(AS_ONE[inner]!(sql)));

/** Ordinary statements that mention the words in names, strings and comments. */
const PROSE = ["'grant'", "'please revoke my access'", "'the password'", "'user'", "'a role'", "'set it later'", "'then grant it'", '"drop users who left (all)"', "'C:\\\\user'"];
const ordinary = fc
  .tuple(
    fc.constantFrom(
      'SELECT user, role, password FROM accounts WHERE user = $',
      'UPDATE accounts SET password = $, role = $ WHERE user = $',
      'INSERT INTO accounts SET user = $, password = PASSWORD($)',
      'INSERT INTO notes (user, note) VALUES ($, $)',
      'SELECT grant_id, @password, t.role FROM t WHERE x IN ($, $)',
      'SHOW GRANTS',
    ),
    fc.array(fc.constantFrom(...PROSE), { minLength: 3, maxLength: 3 }),
    fc.array(separator, { minLength: 12, maxLength: 12 }),
  )
  .map(([template, literals, separators]) => {
    let k = 0;
    const words = template.replaceAll('$', () => literals[k++ % literals.length]!).split(' ');
    return words.map((word, i) => (i === 0 ? word : separators[i % separators.length]! + word)).join('');
  });

describe('accountChange properties', () => {
  it('never throws, and answers null or a statement', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), hidden, ordinary, fc.string({ unit: fc.constantFrom("'", '"', '\\', '`', '/*', '*/', '/*!', ';', 'GRANT', 'SET', 'PASSWORD', ' ', '\n', '#', '-- ', '0x', "X'") })), (sql) => {
        const result = accountChange(sql, MARIADB);
        assert.ok(result === null || (typeof result.statement === 'string' && typeof result.inLiteral === 'boolean'));
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses any account statement, however written and wherever hidden', () => {
    fc.assert(
      fc.property(hidden, (sql) => {
        assert.notEqual(accountChange(sql, MARIADB), null, sql);
      }),
      { numRuns: 3000 },
    );
  });

  it('passes ordinary statements whose names, strings and comments mention the words', () => {
    fc.assert(
      fc.property(ordinary, (sql) => {
        assert.equal(accountChange(sql, MARIADB), null, sql);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads a long hostile text in linear time', () => {
    const texts = [
      "SELECT 'user\\\\' ".repeat(50_000),
      'SET @a = 1,'.repeat(50_000) + ' x = 1',
      "EXECUTE IMMEDIATE '".repeat(20_000),
      `SELECT ${"'a\\'b' ".repeat(50_000)}`,
      '/*!'.repeat(50_000) + ' user',
      `PREPARE s FROM '${"''".repeat(100_000)}'`,
    ];
    const started = performance.now();
    for (const sql of texts) accountChange(sql, MARIADB);
    assert.ok(performance.now() - started < 2000, `${(performance.now() - started).toFixed(0)} ms`);
  });
});
