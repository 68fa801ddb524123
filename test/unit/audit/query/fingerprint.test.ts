/**
 * SQL fingerprints: what folds (literals, lists, rows, comments, spacing, case) and what does
 * not (names, operators, structure); properties over generated statements: any text gives a
 * bounded fingerprint without throwing, and statements that differ only in their literals,
 * list lengths, spacing, comments and keyword case share one. Reading stays linear.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_FINGERPRINT_CHARS, sqlFingerprint } from '../../../../src/audit/query/fingerprint.ts';

describe('sqlFingerprint: what folds', () => {
  const cases: [string, string][] = [
    ["SELECT a, b FROM t WHERE id = 5 AND name = 'x''y'", 'select a, b from t where id = ? and name = ?'],
    ['select  a,b\n\tfrom T where ID=-5.5e3 and name="q\\""', 'select a, b from t where id = ? and name = ?'],
    ["SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/", 'select ?'],
    ['SELECT * FROM t WHERE id IN (1, 2, 3) AND x IN (\'a\')', 'select * from t where id in (?+) and x in (?+)'],
    ["INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, NULL);", 'insert into t(a, b) values (?+)'],
    ['INSERT INTO t VALUES (1, NOW()), (2, NOW()), (3, NOW())', 'insert into t values (?, now())'],
    ['INSERT INTO t VALUES (1, NOW()), (2, 3)', 'insert into t values (?, now()), (?+)'],
    ['SELECT x FROM t WHERE a IS NULL AND b IS NOT NULL AND c = NULL', 'select x from t where a is null and b is not null and c = ?'],
    ["/*!40101 SET NAMES utf8mb4 */; SELECT @@session.autocommit, @v := 1 -- the end\n# really", 'set names utf8mb4; select @@session.autocommit, @v := ?'],
    ["SELECT X'0A', x'0a', B'101', N'ü', _utf8mb4'x', _binary 'y', 0x1F, 0b101, .5, 1e-3, 'a' 'b'", 'select ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?'],
    ['SELECT a - 1, a-2, -3, - 4, +5, (-6), a * -7', 'select a - ?, a - ?, ?, ?, ?, (?+), a * ?'],
    ['SELECT 1abc, t1.c2 FROM `Orders` JOIN `weird name` ON `a``b` = 1', 'select 1abc, t1.c2 from orders join `weird name` on `a``b` = ?'],
    ['SELECT ? FROM t WHERE a = ? AND b IN (?, ?) LIMIT 10, 20', 'select ? from t where a = ? and b in (?+) limit ?, ?'],
    ['UPDATE t SET a = a + 1 WHERE id = 7', 'update t set a = a + ? where id = ?'],
    ['SELECT count(*), COUNT (*), max(a) FROM t WHERE (a = 1 OR b = 2)', 'select count(*), count(*), max(a) from t where (a = ? or b = ?)'],
    ["SELECT 'unterminated", 'select ?'],
    ['SELECT 1 /* unterminated', 'select ?'],
    ['SELECT a FROM t WHERE a <=> 1 AND b->>\'$.x\' = 2 OR c || d', "select a from t where a <=> ? and b ->> ? = ? or c || d"],
    ['  ;; ', ''],
    ['-- only a comment', ''],
  ];
  for (const [sql, fingerprint] of cases) {
    it(JSON.stringify(sql), () => assert.equal(sqlFingerprint(sql), fingerprint));
  }

  it('keeps what tells statements apart: names, operators, structure', () => {
    const distinct = ['SELECT a FROM t WHERE id = 1', 'SELECT a FROM u WHERE id = 1', 'SELECT b FROM t WHERE id = 1', 'SELECT a FROM t WHERE id > 1', 'SELECT a FROM t WHERE id = 1 LIMIT 1', 'DELETE FROM t WHERE id = 1', 'SELECT a FROM `t x` WHERE id = 1'];
    assert.equal(new Set(distinct.map(sqlFingerprint)).size, distinct.length);
  });

  it('keeps no literal value', () => {
    const fingerprint = sqlFingerprint("SELECT * FROM users WHERE password = 'hunter2' AND pin = 987654 AND token = X'DEADBEEF' AND n = _latin1'secret'");
    assert.doesNotMatch(fingerprint, /hunter2|987654|deadbeef|secret/i);
  });

  it('cuts a long fingerprint at the cap and ends it with …', () => {
    const sql = `SELECT ${Array.from({ length: 2000 }, (_, i) => `c${i}`).join(', ')} FROM t`;
    const fingerprint = sqlFingerprint(sql);
    assert.ok(fingerprint.length <= MAX_FINGERPRINT_CHARS + 2, String(fingerprint.length));
    assert.ok(fingerprint.endsWith(' …'));
    assert.ok(fingerprint.startsWith('select c0, c1, c2'));
  });

  it('reads long and hostile texts in linear time', () => {
    const MB = 1 << 20;
    const texts = [
      `SELECT * FROM t WHERE id IN (${'1, '.repeat(MB / 3)}1)`,
      `INSERT INTO t VALUES ${'(1, NOW()), '.repeat(MB / 12)}(1, NOW())`,
      '('.repeat(MB),
      "'".repeat(MB),
      '/*'.repeat(MB / 2),
      '/*!'.repeat(MB / 3),
      `SELECT '${'\\'.repeat(MB)}`,
      '-'.repeat(MB),
      ', ?'.repeat(MB / 3),
      `SELECT ${'a '.repeat(MB / 2)}`,
    ];
    for (const text of texts) {
      const started = performance.now();
      const fingerprint = sqlFingerprint(text);
      const ms = performance.now() - started;
      assert.ok(fingerprint.length <= MAX_FINGERPRINT_CHARS + 2);
      assert.ok(ms < 1000, `${JSON.stringify(text.slice(0, 20))}…: ${ms.toFixed(0)} ms`);
    }
  });
});

// ------------------------------------------------------------------------------------------
// Generated statements: a template with literal slots, rendered twice with other values.

type Part = { readonly text: string } | { readonly slot: 'one' } | { readonly slot: 'list' } | { readonly slot: 'rows'; readonly width: number };
interface Fill {
  readonly literals: readonly string[];
  readonly lengths: readonly number[];
  readonly spaces: readonly string[];
  readonly upper: boolean;
}

const quote = (text: string, q: string) => q + text.replaceAll('\\', '\\\\').replaceAll(q, q + q) + q;
/** Literals as a client writes them; a signed number only where the template puts a literal after an operator, `(`, `,` or a keyword. */
const literal = fc.oneof(
  fc.nat().map(String),
  fc.integer({ min: -1_000_000, max: -1 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
  fc.string().map((s) => quote(s, "'")),
  fc.string().map((s) => quote(s, '"')),
  fc.string({ unit: 'grapheme' }).map((s) => `N${quote(s, "'")}`),
  fc.string().map((s) => `_utf8mb4 ${quote(s, "'")}`),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => `X'${Buffer.from(b).toString('hex')}'`),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
  fc.constant('NULL'),
  fc.constant('?'),
);
/** Between tokens: spaces, line breaks, comments of every kind (a traceparent differs per statement). */
const space = fc.constantFrom(' ', '  ', '\n\t', ' /* c */ ', " /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/ ", ' -- note\n', ' # note\n');
const fill: fc.Arbitrary<Fill> = fc.record({
  literals: fc.array(literal, { minLength: 1, maxLength: 20 }),
  lengths: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 8 }),
  spaces: fc.array(space, { minLength: 1, maxLength: 8 }),
  upper: fc.boolean(),
});

const column = fc.constantFrom('id', 'name', 'total', 'customer_id', '`order`', 'o.status', '`weird col`');
const table = fc.constantFrom('orders', 't', '`my table`', 'shop.orders');
const t = (text: string): Part => ({ text });
const one: Part = { slot: 'one' };
const condition = fc.oneof(
  fc.tuple(column, fc.constantFrom('=', '<>', '<', '>=', '!=', '<=>')).map(([c, op]) => [t(`${c} ${op} `), one]),
  column.map((c) => [t(`${c} IN (`), { slot: 'list' } as Part, t(')')]),
  column.map((c) => [t(`${c} BETWEEN `), one, t(' AND '), one]),
  column.map((c) => [t(`${c} LIKE `), one]),
  column.map((c) => [t(`${c} IS NULL`)]),
  column.map((c) => [t(`${c} = ${c} + `), one]),
);
const where = fc.array(condition, { maxLength: 4 }).map((conds) => (conds.length === 0 ? [] : [t(' WHERE '), ...conds.flatMap((c, i) => (i === 0 ? c : [t(' AND '), ...c]))]));
const template: fc.Arbitrary<Part[]> = fc.oneof(
  fc.tuple(fc.array(column, { minLength: 1, maxLength: 4 }), table, where, fc.boolean()).map(([cols, tb, w, limit]) => [
    t(`SELECT ${cols.join(', ')} FROM ${tb}`),
    ...w,
    ...(limit ? [t(' LIMIT '), one] : []),
  ]),
  fc.tuple(table, fc.array(column, { minLength: 1, maxLength: 4 })).map(([tb, cols]) => [t(`INSERT INTO ${tb} (${cols.join(', ')}) VALUES `), { slot: 'rows', width: cols.length } as Part]),
  fc.tuple(table, column, where).map(([tb, c, w]) => [t(`UPDATE ${tb} SET ${c} = `), one, ...w]),
  fc.tuple(table, where).map(([tb, w]) => [t(`DELETE FROM ${tb}`), ...w]),
);

const KEYWORDS = /\b(SELECT|FROM|WHERE|AND|IN|BETWEEN|LIKE|IS|NULL|INSERT|INTO|VALUES|UPDATE|SET|DELETE|LIMIT)\b/g;

function render(parts: readonly Part[], f: Fill): string {
  let l = 0;
  let n = 0;
  let s = 0;
  const next = () => f.literals[l++ % f.literals.length]!;
  const length = () => f.lengths[n++ % f.lengths.length]!;
  const list = (k: number) => Array.from({ length: k }, next).join(', ');
  const out = parts.map((part) => {
    if ('text' in part) {
      const text = part.text.replace(KEYWORDS, (k) => (f.upper ? k : k.toLowerCase()));
      // Every space outside quoted names may be any whitespace or comment.
      return text.split(/(`[^`]*`)/).map((piece, i) => (i % 2 === 1 ? piece : piece.replaceAll(' ', () => f.spaces[s++ % f.spaces.length]!))).join('');
    }
    if (part.slot === 'one') return next();
    if (part.slot === 'list') return list(length());
    return Array.from({ length: length() }, () => `(${list(part.width)})`).join(', ');
  });
  return out.join('') + (f.upper ? ';' : '');
}

describe('sqlFingerprint: properties', () => {
  it('never throws, on any text, and stays within its cap', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom(...`'"\`\\/*-#!M;(),?.0123456789eExXbBnN_ \n`) })), (text) => {
        const fingerprint = sqlFingerprint(text);
        assert.equal(typeof fingerprint, 'string');
        assert.ok(fingerprint.length <= MAX_FINGERPRINT_CHARS + 2);
      }),
      { numRuns: 2000 },
    );
  });

  it('statements that differ only in literals, list lengths, spacing, comments and keyword case share a fingerprint', () => {
    fc.assert(
      fc.property(template, fill, fill, (parts, a, b) => {
        const [first, second] = [render(parts, a), render(parts, b)];
        assert.equal(sqlFingerprint(first), sqlFingerprint(second), `${first}\n${second}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('the fingerprint of a generated statement holds none of its string literals', () => {
    const marked = fc.string({ minLength: 1 }).map((s) => `zq${s}qz`);
    fc.assert(
      fc.property(template, fill, marked, (parts, f, secret) => {
        const sql = render(parts, { ...f, literals: [quote(secret, "'")] });
        assert.ok(!sqlFingerprint(sql).includes('zq'), sql);
      }),
      { numRuns: 300 },
    );
  });
});
