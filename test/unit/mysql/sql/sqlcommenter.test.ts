import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { extractTraceparent, parseCommenterFields, sqlcommenterComment } from '../../../../src/engines/mysql/sql/sqlcommenter.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const TP = `00-${TRACE}-${SPAN}-01`;
const EXPECTED = { traceId: TRACE, spanId: SPAN, flags: '01' };

/** Fragments that exercise every lexer state, glued at random. */
const sqlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'SELECT ', 'FROM t ', 'WHERE a = ', "'str'", "'it''s'", "'a\\'b'", '"dq"', '`id`', '`a``b`', ';', ' ', '\n', '\t',
        '-- c\n', '-- c', '--', '--1', '#x', '# y\n', '/* c */', '/*', '*/', '/*!50000 ', '/*M!', "'", '"', '`', '\\', '5--1',
        "/*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/", 'traceparent=', '\0',
      ),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 14 },
  )
  .map((parts) => parts.join(''));

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));

describe('extractTraceparent', () => {
  const table: Array<[string, typeof EXPECTED | null]> = [
    [`SELECT 1 /*traceparent='${TP}'*/`, EXPECTED],
    [`SELECT 1 /*action='%2Fparam%2A',framework='spring',traceparent='${TP}',tracestate='congo%3Dt61rcWkgMzE'*/`, EXPECTED],
    [`SELECT 1 /* traceparent='${TP}' */;`, EXPECTED],
    [`/*traceparent='${TP}'*/ SELECT 1`, EXPECTED],
    [`SELECT 1 /*traceparent='00%2D${TRACE}%2D${SPAN}%2D01'*/`, EXPECTED],
    [`SELECT 1 /*a='x', traceparent='${TP}'*/`, EXPECTED],
    [`SELECT 1 /*traceparent='00-${'0'.repeat(32)}-${SPAN}-01'*/ /*traceparent='${TP}'*/`, EXPECTED],
    [`SELECT 1 /*traceparent='${TP}'*/ /*traceparent='00-${'1'.repeat(32)}-${SPAN}-00'*/`, { traceId: '1'.repeat(32), spanId: SPAN, flags: '00' }],
    ['SELECT 1', null],
    ['SELECT 1 /*traceparent*/', null],
    [`SELECT 1 /*traceparent=${TP}*/`, null],
    [`SELECT 1 /*traceparent='${TP}'`, null],
    [`SELECT 1 /*traceparent='${TP.toUpperCase()}'*/`, null],
    [`SELECT 1 /*traceparent='01-${TRACE}-${SPAN}-01'*/`, null],
    [`SELECT 1 /*traceparent='ff-${TRACE}-${SPAN}-01'*/`, null],
    [`SELECT 1 /*traceparent='00-${TRACE}-${SPAN}-01-extra'*/`, null],
    [`SELECT 1 /*traceparent='00-${'0'.repeat(32)}-${SPAN}-01'*/`, null],
    [`SELECT 1 /*traceparent='00-${TRACE}-${'0'.repeat(16)}-01'*/`, null],
    [`SELECT 1 /*traceparent='00-${TRACE}-${SPAN}-1'*/`, null],
    [`SELECT 1 /*traceparent='%E0%A4%A'*/`, null],
    [`SELECT '/*traceparent=''${TP}''*/'`, null],
    [`SELECT "/*traceparent='${TP}'*/"`, null],
    [`SELECT 1 -- /*traceparent='${TP}'*/`, null],
    [`SELECT 1 /*!traceparent='${TP}'*/`, null],
    [`SELECT 1 /*a='b',traceparent='${TP}',*/`, null],
    [`SELECT 1 /*a=,traceparent='${TP}'*/`, null],
  ];
  for (const [sql, expected] of table) {
    it(`${expected === null ? 'finds nothing in' : 'extracts from'} ${JSON.stringify(sql.slice(0, 90))}`, () => {
      assert.deepEqual(extractTraceparent(sql), expected);
    });
  }

  it('never throws, and finds a traceparent only where the key occurs', () => {
    fc.assert(
      fc.property(fc.oneof(sqlish, fc.string({ unit: 'binary' })), (sql) => {
        const found = extractTraceparent(sql);
        if (!sql.includes('traceparent')) assert.equal(found, null);
      }),
      { numRuns: 3000 },
    );
    assert.equal(extractTraceparent(undefined as unknown as string), null);
  });

  it('stays linear on many comments before one key', () => {
    const sql = 'SELECT 1 ' + '/**/'.repeat(200_000) + `/*traceparent='${TP}'*/`;
    const started = performance.now();
    assert.deepEqual(extractTraceparent(sql), EXPECTED);
    assert.ok(performance.now() - started < 500);
  });

  it("round-trips a traceparent put in front of a statement, and never hides the client's own", () => {
    fc.assert(
      fc.property(
        hex(32).filter((h) => /[1-9a-f]/.test(h)),
        hex(16).filter((h) => /[1-9a-f]/.test(h)),
        hex(2),
        fc.dictionary(fc.string({ minLength: 1, unit: 'binary' }), fc.string({ unit: 'binary' }), { maxKeys: 4 }),
        sqlish,
        (traceId, spanId, flags, extra, sql) => {
          const fields = { ...extra, traceparent: `00-${traceId}-${spanId}-${flags}` };
          // meshgate's tag goes first: the client's own traceparent, if it has one, still wins.
          const tagged = `${sqlcommenterComment(fields)} ${sql}`;
          assert.deepEqual(extractTraceparent(tagged), extractTraceparent(sql) ?? { traceId, spanId, flags });
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('sqlcommenterComment', () => {
  it('sorts keys and percent-encodes keys and values', () => {
    assert.equal(sqlcommenterComment({}), '');
    assert.equal(sqlcommenterComment({ route: '/users', action: 'index' }), "/*action='index',route='%2Fusers'*/");
    assert.equal(sqlcommenterComment({ 'route parameter': "FOO 'BAR" }), "/*route%20parameter='FOO%20%27BAR'*/");
    assert.equal(sqlcommenterComment({ '!x': '*/', M: '!', '+h': '(é)' }), "/*%21x='%2A%2F',%2Bh='%28%C3%A9%29',M='%21'*/");
    assert.equal(sqlcommenterComment({ k: '\ud800' }), "/*k='%EF%BF%BD'*/");
    assert.throws(() => sqlcommenterComment({ '': 'v' }), TypeError);
  });

  it('can never end early or open as an executable comment or hint, and parses back', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, unit: 'binary' }), fc.string({ unit: 'binary' }), { minKeys: 1, maxKeys: 5 }), (fields) => {
        const comment = sqlcommenterComment(fields);
        assert.ok(comment.startsWith('/*') && comment.endsWith('*/'));
        assert.equal(comment.indexOf('*/'), comment.length - 2);
        assert.doesNotMatch(comment, /^\/\*(?:!|M!|\+)/);
        assert.match(comment.slice(2, -2), /^[A-Za-z0-9._~%=',-]+$/);
        const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
        const expected = new Map(Object.entries(fields).map(([k, v]) => [wellFormed(k), wellFormed(v)]));
        assert.deepEqual(parseCommenterFields(comment.slice(2, -2)), expected);
      }),
      { numRuns: 1000 },
    );
  });
});
