import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ServerFlavor } from '../../../../src/engines/mysql/sql/classify.ts';
import { applyTextEdits, definerEdits, type DefinerOptions, type TextEdit } from '../../../../src/engines/mysql/sql/definer.ts';
import { TokenReader } from '../../../../src/engines/mysql/sql/tokens.ts';

const MULTI: DefinerOptions = { multiStatements: true };
const MARIADB_10_11: ServerFlavor = { version: 101119, mariadb: true };

const rewrite = (sql: string, options?: DefinerOptions) => applyTextEdits(sql, definerEdits(sql, options));

describe('definerEdits: the role owns what a statement creates', () => {
  const changed: Array<[string, string, DefinerOptions?]> = [
    ['CREATE VIEW v AS SELECT 1', 'CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1'],
    ['create or replace view v as select 1', 'create or replace DEFINER=CURRENT_ROLE view v as select 1'],
    ['CREATE ALGORITHM=MERGE VIEW v AS SELECT 1', 'CREATE ALGORITHM=MERGE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1'],
    ['CREATE OR REPLACE ALGORITHM = TEMPTABLE SQL SECURITY INVOKER VIEW v AS SELECT 1', 'CREATE OR REPLACE ALGORITHM = TEMPTABLE DEFINER=CURRENT_ROLE SQL SECURITY INVOKER VIEW v AS SELECT 1'],
    ['CREATE SQL SECURITY DEFINER VIEW IF NOT EXISTS v (a) AS SELECT 1', 'CREATE DEFINER=CURRENT_ROLE SQL SECURITY DEFINER VIEW IF NOT EXISTS v (a) AS SELECT 1'],
    ['CREATE PROCEDURE p() SELECT 1', 'CREATE DEFINER=CURRENT_ROLE PROCEDURE p() SELECT 1'],
    ['CREATE PROCEDURE IF NOT EXISTS db.p(IN a INT) BEGIN SELECT a; END', 'CREATE DEFINER=CURRENT_ROLE PROCEDURE IF NOT EXISTS db.p(IN a INT) BEGIN SELECT a; END'],
    ['CREATE FUNCTION f() RETURNS INT RETURN 1', 'CREATE DEFINER=CURRENT_ROLE FUNCTION f() RETURNS INT RETURN 1'],
    ['CREATE FUNCTION IF NOT EXISTS `f` (a INT) RETURNS INT RETURN a', 'CREATE DEFINER=CURRENT_ROLE FUNCTION IF NOT EXISTS `f` (a INT) RETURNS INT RETURN a'],
    ['CREATE FUNCTION db.f RETURN INT AS BEGIN RETURN 1; END', 'CREATE DEFINER=CURRENT_ROLE FUNCTION db.f RETURN INT AS BEGIN RETURN 1; END'],
    ['CREATE FUNCTION f RETURN NUMBER AS BEGIN RETURN 1; END', 'CREATE DEFINER=CURRENT_ROLE FUNCTION f RETURN NUMBER AS BEGIN RETURN 1; END'], // sql_mode=ORACLE
    ['CREATE AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN END', 'CREATE DEFINER=CURRENT_ROLE AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN END'],
    ['CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1', 'CREATE DEFINER=CURRENT_ROLE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1'],
    ['CREATE OR REPLACE TRIGGER t AFTER UPDATE ON x FOR EACH ROW BEGIN END', 'CREATE OR REPLACE DEFINER=CURRENT_ROLE TRIGGER t AFTER UPDATE ON x FOR EACH ROW BEGIN END'],
    ['CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM x', 'CREATE DEFINER=CURRENT_ROLE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM x'],
    ['CREATE PACKAGE p AS PROCEDURE q; END', 'CREATE DEFINER=CURRENT_ROLE PACKAGE p AS PROCEDURE q; END'],
    ['CREATE PACKAGE BODY p AS PROCEDURE q AS BEGIN NULL; END; END', 'CREATE DEFINER=CURRENT_ROLE PACKAGE BODY p AS PROCEDURE q AS BEGIN NULL; END; END'],
    // ALTER EVENT makes its caller the definer again; ALTER VIEW keeps the view's.
    ['ALTER EVENT e ON SCHEDULE EVERY 2 HOUR', 'ALTER DEFINER=CURRENT_ROLE EVENT e ON SCHEDULE EVERY 2 HOUR'],
    ['alter event e disable', 'alter DEFINER=CURRENT_ROLE event e disable'],
    // CURRENT_USER is the lease account: the role instead.
    ['CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1', 'CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1'],
    ['CREATE DEFINER = current_user() PROCEDURE p() SELECT 1', 'CREATE DEFINER = CURRENT_ROLE PROCEDURE p() SELECT 1'],
    ['CREATE DEFINER=CURRENT_USER ( ) TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1', 'CREATE DEFINER=CURRENT_ROLE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1'],
    ['CREATE ALGORITHM=UNDEFINED DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW v AS SELECT 1', 'CREATE ALGORITHM=UNDEFINED DEFINER=CURRENT_ROLE SQL SECURITY DEFINER VIEW v AS SELECT 1'],
    ['ALTER DEFINER=CURRENT_USER VIEW v AS SELECT 2', 'ALTER DEFINER=CURRENT_ROLE VIEW v AS SELECT 2'],
    ['ALTER ALGORITHM=MERGE DEFINER=CURRENT_USER() SQL SECURITY INVOKER VIEW v AS SELECT 2', 'ALTER ALGORITHM=MERGE DEFINER=CURRENT_ROLE SQL SECURITY INVOKER VIEW v AS SELECT 2'],
    ['ALTER DEFINER=CURRENT_USER EVENT e ENABLE', 'ALTER DEFINER=CURRENT_ROLE EVENT e ENABLE'],
    ['CREATE FUNCTION f RETURNS INT SONAME "x.so"; ', 'CREATE FUNCTION f RETURNS INT SONAME "x.so"; '],
    // Leading comments, and mariadb-dump's executable comments.
    ['/* note */ -- line\n# hash\nCREATE VIEW v AS SELECT 1', '/* note */ -- line\n# hash\nCREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1'],
    ['CREATE/*x*/VIEW v AS SELECT 1', 'CREATE DEFINER=CURRENT_ROLE/*x*/VIEW v AS SELECT 1'],
    [
      '/*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */;;',
      '/*!50003 CREATE DEFINER=CURRENT_ROLE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */;;',
    ],
    [
      '/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */',
      '/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_ROLE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */',
    ],
    [
      '/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 AS `1` */;',
      '/*!50001 CREATE ALGORITHM=UNDEFINED DEFINER=CURRENT_ROLE */\n/*!50013 SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 AS `1` */;',
    ],
    ['/*!50106 CREATE*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1 */', '/*!50106 CREATE DEFINER=CURRENT_ROLE*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1 */'],
    ['/*M!100500 CREATE VIEW v AS SELECT 1 */', '/*M!100500 CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1 */', { server: MARIADB_10_11 }],
    ['/*!50700 CREATE TABLE x (a INT) */ CREATE VIEW v AS SELECT 1', '/*!50700 CREATE TABLE x (a INT) */ CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1'],
    // Several statements, with CLIENT_MULTI_STATEMENTS.
    [
      "SELECT 'CREATE VIEW x'; CREATE VIEW v AS SELECT 1; ALTER TABLE t ADD c INT; CREATE TABLE t2 (a INT); CREATE PROCEDURE p() BEGIN CREATE VIEW w AS SELECT 1; END; CREATE VIEW z AS SELECT 1",
      "SELECT 'CREATE VIEW x'; CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1; ALTER TABLE t ADD c INT; CREATE TABLE t2 (a INT); CREATE DEFINER=CURRENT_ROLE PROCEDURE p() BEGIN CREATE VIEW w AS SELECT 1; END; CREATE VIEW z AS SELECT 1",
      MULTI,
    ],
    ['CREATE VIEW a AS SELECT 1;\nCREATE VIEW b AS SELECT 2;', 'CREATE DEFINER=CURRENT_ROLE VIEW a AS SELECT 1;\nCREATE DEFINER=CURRENT_ROLE VIEW b AS SELECT 2;', MULTI],
    // A stored program's body may hold ';': nothing after it is read.
    ['CREATE PROCEDURE p() BEGIN SELECT 1; END; CREATE VIEW v AS SELECT 1', 'CREATE DEFINER=CURRENT_ROLE PROCEDURE p() BEGIN SELECT 1; END; CREATE VIEW v AS SELECT 1', MULTI],
    ['ALTER EVENT e DO BEGIN SELECT 1; END; CREATE VIEW v AS SELECT 1', 'ALTER DEFINER=CURRENT_ROLE EVENT e DO BEGIN SELECT 1; END; CREATE VIEW v AS SELECT 1', MULTI],
    ['SET @a = 1; SET STATEMENT max_statement_time = (1) FOR CREATE VIEW v AS SELECT @a', 'SET @a = 1; SET STATEMENT max_statement_time = (1) FOR CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT @a', MULTI],
    // The same whichever way sql_mode reads backslashes.
    ["INSERT INTO t VALUES ('a\\\\b'); CREATE VIEW v AS SELECT 1", "INSERT INTO t VALUES ('a\\\\b'); CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1", MULTI],
    // Characters beyond ASCII after the change do not matter.
    ["CREATE VIEW `vüe` AS SELECT 'é'", "CREATE DEFINER=CURRENT_ROLE VIEW `vüe` AS SELECT 'é'"],
  ];
  for (const [sql, expected, options] of changed) {
    it(`${JSON.stringify(sql.slice(0, 90))}${options?.multiStatements ? ' (multi-statements)' : ''}`, () => {
      assert.equal(rewrite(sql, options), expected);
    });
  }

  const untouched: Array<[string, string, DefinerOptions?]> = [
    ['SELECT 1', 'no object'],
    ["SELECT 'CREATE VIEW v AS SELECT 1'", 'a string'],
    ['/* CREATE VIEW v AS SELECT 1 */ SELECT 1', 'a comment'],
    ['ALTER VIEW v AS SELECT 1', 'ALTER VIEW keeps the definer'],
    ['ALTER ALGORITHM=MERGE VIEW v AS SELECT 1', 'ALTER VIEW keeps the definer'],
    ['CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1', 'the role already'],
    ['CREATE DEFINER=current_role() PROCEDURE p() SELECT 1', 'the role already'],
    ['CREATE DEFINER=`admin`@`%` VIEW v AS SELECT 1', 'another definer: MariaDB decides'],
    ["CREATE DEFINER='app'@'localhost' TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1", 'another definer'],
    ['CREATE DEFINER=some_role EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1', 'another definer'],
    ['/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 */', 'a dump with its definer'],
    ['CREATE DEFINER=CURRENT_USER /* why */ () VIEW v AS SELECT 1', 'a comment inside the clause'],
    ['CREATE FUNCTION f RETURNS STRING SONAME "udf.so"', 'a UDF has no definer'],
    ['CREATE AGGREGATE FUNCTION IF NOT EXISTS f RETURNS INTEGER SONAME "udf.so"', 'a UDF has no definer'],
    ['CREATE FUNCTION `fü`() RETURNS INT RETURN 1', 'a function name not in ASCII: cannot tell a UDF with certainty'],
    ['CREATE TABLE t (a INT)', 'no definer'],
    ['CREATE OR REPLACE TABLE t AS SELECT 1', 'no definer'],
    ['ALTER PROCEDURE p COMMENT "x"', 'ALTER PROCEDURE takes no definer'],
    ['CREATE ALGORITHM=MERGE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1', 'malformed: error text as direct'],
    ['CREATE SQL SECURITY INVOKER PROCEDURE p() SELECT 1', 'malformed'],
    ['CREATE ALGORITHM=FAST VIEW v AS SELECT 1', 'malformed'],
    ['CREATE OR REPLAC VIEW v AS SELECT 1', 'malformed'],
    ['CREATE DEFINER VIEW v AS SELECT 1', 'malformed'],
    ['CREATE DEFINER=CURRENT_USER( VIEW v AS SELECT 1', 'malformed'],
    ['CREATE VIEW', 'malformed: the keyword reaches the end'],
    ['CREATE', 'malformed'],
    ["/* café */ CREATE VIEW v AS SELECT 1", 'not ASCII before the change'],
    ["CREATE /* café */ VIEW v AS SELECT 1", 'not ASCII before the keyword'],
    ['CREATE\0VIEW v AS SELECT 1', 'NUL'],
    ['/*!99999 CREATE VIEW v AS SELECT 1 */', 'a versioned comment MariaDB skips'],
    ['/*!50700 CREATE VIEW v AS SELECT 1 */', 'MySQL 5.7 syntax MariaDB skips'],
    ['/*M!999999 CREATE VIEW v AS SELECT 1 */', 'depends on a version not known'],
    ['/*m!50000 CREATE VIEW v AS SELECT 1 */', 'readers disagree'],
    ['/*!50001 CREATE /* nested */ VIEW v AS SELECT 1 */', 'nested comment in an executable one'],
    ['/* unterminated CREATE VIEW v AS SELECT 1', 'unterminated'],
    ["PREPARE s FROM 'CREATE VIEW v AS SELECT 1'", 'a statement in a string'],
    ["EXECUTE IMMEDIATE 'CREATE VIEW v AS SELECT 1'", 'a statement in a string'],
    ['SELECT 1; CREATE VIEW v AS SELECT 1', 'without multi-statements the second statement is a syntax error'],
    ['BEGIN NOT ATOMIC CREATE VIEW v AS SELECT 1; END', 'a compound statement', MULTI],
    ['lbl: BEGIN NOT ATOMIC SELECT 1; END; CREATE VIEW v AS SELECT 1', 'a labelled compound statement', MULTI],
    ["INSERT INTO t VALUES ('é'); CREATE VIEW v AS SELECT 1", 'not ASCII before the second statement', MULTI],
    ["INSERT INTO t VALUES ('a\\'; CREATE VIEW v AS SELECT 1; -- '); CREATE VIEW w AS SELECT 2", 'sql_mode decides where the string ends', MULTI],
    ['SELECT 1;; CREATE VIEW v AS SELECT 1', 'an empty statement', MULTI],
    ['/*!40101 SET a = 1; */ CREATE VIEW v AS SELECT 1', "';' inside an executable comment", MULTI],
    ['SET STATEMENT a = 1 CREATE VIEW v AS SELECT 1', 'no FOR'],
  ];
  for (const [sql, why, options] of untouched) {
    it(`leaves ${JSON.stringify(sql.slice(0, 70))} alone: ${why}`, () => {
      assert.deepEqual(definerEdits(sql, options), []);
    });
  }

  it('gives edits whose offsets are byte offsets: everything before them is ASCII', () => {
    const sql = "CREATE DEFINER=CURRENT_USER() VIEW `vüe` AS SELECT 'é'";
    const edits = definerEdits(sql);
    assert.deepEqual(edits, [{ at: 15, remove: 14, insert: 'CURRENT_ROLE' }]);
    assert.equal(Buffer.byteLength(sql.slice(0, edits[0]!.at + edits[0]!.remove)), edits[0]!.at + edits[0]!.remove);
  });

  it('reads a long hostile text in linear time', () => {
    const texts = [
      'CREATE ' + '/**/'.repeat(100_000) + 'VIEW v AS SELECT 1',
      'SET STATEMENT a = ' + '('.repeat(100_000) + ' FOR CREATE VIEW v AS SELECT 1',
      'SET STATEMENT a=1 FOR '.repeat(20_000) + 'CREATE VIEW v AS SELECT 1',
      'SELECT 1;'.repeat(50_000) + 'CREATE VIEW v AS SELECT 1',
      "SELECT 'create\\\\';".repeat(30_000) + 'CREATE VIEW v AS SELECT 1',
    ];
    const started = performance.now();
    for (const sql of texts) definerEdits(sql, MULTI);
    assert.ok(performance.now() - started < 1000);
    assert.equal(rewrite(texts[3]!, MULTI).endsWith('CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1'), true);
  });
});

/** Pieces that are never code wherever they stand (with a separator around them). */
const INERT = ["'CREATE VIEW v AS'", '`CREATE VIEW`', '"ALTER EVENT e"', '/* CREATE VIEW v */', '/*!99999 CREATE VIEW v */', '# CREATE VIEW\n', '-- ALTER EVENT\n', "'CURRENT_USER'"];
const CODE = [
  'CREATE', 'create', 'OR', 'REPLACE', 'ALGORITHM', '=', 'MERGE', 'UNDEFINED', 'DEFINER', 'CURRENT_USER', 'CURRENT_USER()', 'current_user ( )',
  'CURRENT_ROLE', "'u'@'h'", 'SQL', 'SECURITY', 'INVOKER', 'VIEW', 'TRIGGER', 'EVENT', 'PROCEDURE', 'FUNCTION', 'AGGREGATE', 'PACKAGE', 'BODY',
  'ALTER', 'SET', 'STATEMENT', 'FOR', 'IF', 'NOT', 'EXISTS', 'RETURNS', 'RETURN', 'SONAME', 'f', 'v', '(', ')', '.', ';', 'SELECT', '1', 'BEGIN',
  'END', 'TABLE', '/*!50001', '/*!', '/*M!100100', '*/', "'a\\'b'", 'é', '\\', '"',
];
const SEPARATORS = [' ', '\n', '\t', ''];

type Part = string | { readonly inert: string };

/** Joins parts, noting where each inert one landed. */
function assemble(parts: readonly Part[]): { sql: string; inert: Array<[number, number]> } {
  let sql = '';
  const inert: Array<[number, number]> = [];
  for (const part of parts) {
    if (typeof part === 'string') {
      sql += part;
    } else {
      sql += ' ';
      inert.push([sql.length, sql.length + part.inert.length]);
      sql += part.inert + ' ';
    }
  }
  return { sql, inert };
}

/** Random pieces: mostly nonsense, which must never be edited wrongly. */
const pieces = fc
  .array(fc.tuple(fc.constantFrom(...SEPARATORS), fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...INERT) }, { weight: 5, arbitrary: fc.constantFrom(...CODE) })), { maxLength: 30 })
  .map((parts) => assemble(parts.flatMap(([separator, piece]): Part[] => (INERT.includes(piece) ? [{ inert: piece }] : [separator, piece]))));

/** Statements shaped like the real ones, with comments between their words and dump-style wrapping. */
const separator = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<Part>(' ', '\n', '\t ', '/**/', ' -- c\n', ' # c\n') },
  { weight: 1, arbitrary: fc.constantFrom('/* CREATE VIEW v */', '/*!99999 CREATE VIEW v */', '# CREATE VIEW\n', '-- ALTER EVENT\n').map((inert): Part => ({ inert })) },
);
const sometimes = <T,>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });
const head = fc.record({
  verb: fc.constantFrom('CREATE', 'create', 'CREATE', 'ALTER'),
  orReplace: fc.boolean(),
  algorithm: sometimes(fc.constantFrom('MERGE', 'UNDEFINED', 'TEMPTABLE')),
  definer: sometimes(fc.constantFrom('CURRENT_USER', 'CURRENT_USER()', 'current_user ( )', 'CURRENT_ROLE', "'u'@'h'", '`a`@`%`')),
  security: sometimes(fc.constantFrom('DEFINER', 'INVOKER')),
  object: fc.constantFrom(
    'VIEW v AS SELECT 1',
    'VIEW',
    'TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1',
    'EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1',
    'PROCEDURE p() BEGIN SELECT 1; END',
    'FUNCTION f() RETURNS INT RETURN 1',
    'FUNCTION f RETURNS INT SONAME',
    'AGGREGATE FUNCTION f(a INT) RETURNS INT BEGIN END',
    'TABLE t (a INT)',
    'SELECT',
  ),
  body: sometimes(fc.constantFrom(...INERT)),
  executable: fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('/*!50001 ', '/*M!100100 ', '/*!99999 ', '/*!50700 ') }),
});
const statementText = fc.tuple(head, fc.array(separator, { minLength: 14, maxLength: 14 })).map(([h, seps]): Part[] => {
  const words = [
    h.verb,
    ...(h.orReplace ? ['OR', 'REPLACE'] : []),
    ...(h.algorithm === null ? [] : ['ALGORITHM', '=', h.algorithm]),
    ...(h.definer === null ? [] : ['DEFINER', '=', h.definer]),
    ...(h.security === null ? [] : ['SQL', 'SECURITY', h.security]),
    h.object,
  ];
  // Comments inside an executable comment are where readers disagree: plain spaces there.
  const parts: Part[] = [h.executable];
  words.forEach((word, k) => parts.push(word, h.executable === '' ? seps[k]! : ' '));
  if (h.body !== null) parts.push({ inert: h.body });
  if (h.executable !== '') parts.push(' */');
  return parts;
});
const statements = fc
  .array(fc.tuple(statementText, fc.constantFrom(';', '; ', ';\n', ' ')), { minLength: 1, maxLength: 3 })
  .map((list) => assemble(list.flatMap(([parts, end]) => [...parts, end])));

const sqlText = fc.oneof(pieces, statements);

const options = fc.record({ multiStatements: fc.boolean() });

function tokenSpans(sql: string): Array<{ start: number; end: number; text: string }> {
  const r = new TokenReader(sql, true);
  const out: Array<{ start: number; end: number; text: string }> = [];
  for (let t = r.next(); t !== null && t.kind !== 'end'; t = r.next()) out.push({ start: t.start, end: t.end, text: sql.slice(t.start, t.end).toUpperCase() });
  return out;
}

function checkShape(sql: string, edits: readonly TextEdit[]): void {
  let from = 0;
  for (const edit of edits) {
    assert.ok(edit.at >= from && edit.remove >= 0 && edit.at + edit.remove <= sql.length, 'in order, in range');
    assert.match(sql.slice(0, edit.at + edit.remove), /^[\x01-\x7f]*$/, 'ASCII before the change');
    if (edit.remove === 0) {
      assert.equal(edit.insert, ' DEFINER=CURRENT_ROLE');
      assert.match(sql.slice(0, edit.at), /(?:CREATE|REPLACE|ALTER|UNDEFINED|MERGE|TEMPTABLE)$/i);
    } else {
      assert.equal(edit.insert, 'CURRENT_ROLE');
      assert.match(sql.slice(edit.at, edit.at + edit.remove), /^CURRENT_USER\s*(?:\(\s*\))?$/i);
    }
    from = edit.at + edit.remove;
  }
}

describe('definerEdits properties', () => {
  it('is given statements it does edit (the properties below are not vacuous)', () => {
    const samples = fc.sample(statements, { numRuns: 1000, seed: 11 });
    const edited = samples.filter(({ sql }) => definerEdits(sql, MULTI).length > 0).length;
    assert.ok(edited > 200, `${edited} of 1000 edited`);
  });

  it('never throws, and any edit is in order, in range, after ASCII only, of the two known shapes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), sqlText.map((t) => t.sql)), options, (sql, opts) => {
        checkShape(sql, definerEdits(sql, opts));
      }),
      { numRuns: 3000 },
    );
  });

  it('never edits inside a string, a quoted identifier or a comment that does not run', () => {
    fc.assert(
      fc.property(sqlText, options, ({ sql, inert }, opts) => {
        for (const edit of definerEdits(sql, opts)) {
          for (const [start, end] of inert) {
            assert.ok(edit.at + edit.remove <= start || edit.at >= end, `edit at ${edit.at} inside ${JSON.stringify(sql.slice(start, end))} in ${JSON.stringify(sql)}`);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('is idempotent, and the result reads as the same statements with the role as definer', () => {
    fc.assert(
      fc.property(sqlText, options, ({ sql }, opts) => {
        const edits = definerEdits(sql, opts);
        const out = applyTextEdits(sql, edits);
        assert.deepEqual(definerEdits(out, opts), [], `again on ${JSON.stringify(out)}`);
        // Token for token: the input, with the clause added or CURRENT_USER… read as CURRENT_ROLE.
        const expected: string[] = [];
        let next = 0;
        for (const t of tokenSpans(sql)) {
          while (next < edits.length && edits[next]!.at <= t.start) {
            expected.push(...(edits[next]!.remove === 0 ? ['DEFINER', '=', 'CURRENT_ROLE'] : ['CURRENT_ROLE']));
            next++;
          }
          const inside = edits.some((e) => e.remove > 0 && t.start >= e.at && t.end <= e.at + e.remove);
          if (!inside) expected.push(t.text);
        }
        assert.equal(next, edits.length, 'every edit sits before a token');
        assert.deepEqual(tokenSpans(out).map((t) => t.text), expected, JSON.stringify(out));
      }),
      { numRuns: 3000 },
    );
  });

  it('changes only what it says it changes', () => {
    fc.assert(
      fc.property(sqlText, options, ({ sql }, opts) => {
        const edits = definerEdits(sql, opts);
        const out = applyTextEdits(sql, edits);
        let undone = out;
        for (const edit of [...edits].reverse()) {
          const at = edit.at + edits.filter((e) => e.at < edit.at).reduce((n, e) => n + e.insert.length - e.remove, 0);
          undone = undone.slice(0, at) + sql.slice(edit.at, edit.at + edit.remove) + undone.slice(at + edit.insert.length);
        }
        assert.equal(undone, sql);
      }),
      { numRuns: 2000 },
    );
  });
});
