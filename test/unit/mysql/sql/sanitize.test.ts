/**
 * sanitizeSql: what a trace's db.query.text shows of a statement. Examples pin the shape; the
 * properties say it never shows a literal (or a comment) of a statement valid in either
 * backslash reading, never throws, never grows the text, and stays linear on hostile input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sanitizeSql } from '../../../../src/engines/mysql/sql/index.ts';

describe('sanitizeSql', () => {
  const cases: [string, string][] = [
    ["SELECT * FROM orders WHERE id = 42 AND name = 'alice'", 'SELECT * FROM orders WHERE id = ? AND name = ?'],
    ["SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/", 'SELECT ?'],
    ['SELECT 1.5e-3, -7, 0x1F, 0b101, 3E+8', 'SELECT ?, -?, ?, ?, ?'],
    ["SELECT X'ab', b'0101', N'name', _utf8mb4'text', _binary 'raw'", 'SELECT ?, ?, ?, ?, _binary ?'],
    ['SELECT "double", `col 1`, @v, @@session.sql_mode FROM t WHERE c IN (?, ?)', 'SELECT ?, `col 1`, @v, @@session.sql_mode FROM t WHERE c IN (?, ?)'],
    ["UPDATE t SET a = 'x' -- who 123\n, b = 2 # and 456\nWHERE id = 9", 'UPDATE t SET a = ? , b = ? WHERE id = ?'],
    ["/*!100100 SELECT 'x' */ SELECT 1 /*M! , 2 */", 'SELECT ? SELECT ? , ?'],
    ["SELECT 'unterminated and 123", 'SELECT ?'],
    // mysql2 escapes a quote with a backslash: the reading that closes every quote is the session's.
    ["INSERT INTO t (a, b) VALUES ('O\\'Brien', 3)", 'INSERT INTO t (a, b) VALUES (?, ?)'],
    // NO_BACKSLASH_ESCAPES: a literal may end in a backslash.
    ["INSERT INTO t VALUES ('C:\\', 'secret')", 'INSERT INTO t VALUES (?, ?)'],
    // Both readings close their quotes: only what both read as the same code is shown.
    ["SELECT 'a\\'b' , 'c\\'d' FROM t", 'SELECT ? ? ? FROM t'],
    ['', ''],
  ];
  for (const [sql, expected] of cases) {
    it(`${JSON.stringify(sql)} → ${JSON.stringify(expected)}`, () => assert.equal(sanitizeSql(sql), expected));
  }

  it('drops the words of a versioned comment whose running it cannot know, and says something was there', () => {
    assert.equal(sanitizeSql('SELECT a /*!999999 , secret */ FROM t'), 'SELECT a ?');
  });
});

/** Secret text: 'zq' marks it, and it holds everything that could end a literal early. */
const secret = fc
  .array(fc.constantFrom('a', 'b', '7', ' ', "'", '"', '\\', '*/', '/*', '--', '#', '\n', ';', ')', 'é'), { maxLength: 8 })
  .map((parts) => `zq${parts.join('')}zq`);

/** A literal as a client writes it in a session with (escapes) or without (NO_BACKSLASH_ESCAPES) backslash escapes. */
function literal(escapes: boolean): fc.Arbitrary<string> {
  const quoted = (quote: string) =>
    fc.tuple(secret, fc.boolean()).map(([text, backslashQuote]) => {
      let body = escapes ? text.replaceAll('\\', '\\\\') : text;
      body = body.replaceAll(quote, escapes && backslashQuote ? `\\${quote}` : quote + quote);
      return quote + body + quote;
    });
  const digits = fc.stringMatching(/^[1-9][0-9]{0,6}$/);
  return fc.oneof(
    quoted("'"),
    quoted('"'),
    fc.tuple(fc.constantFrom('X', 'x', 'N', '_utf8mb4', '_latin1', 'b'), quoted("'")).map(([prefix, text]) => prefix + text),
    digits,
    fc.tuple(digits, digits).map(([a, b]) => `${a}.${b}`),
    fc.tuple(digits, fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits).map((parts) => parts.join('')),
    fc.stringMatching(/^0x[0-9A-F]{1,8}$/),
    fc.stringMatching(/^0b[01]{1,8}$/),
  );
}

/** Comments may hold anything but their own end; they are dropped whole. */
const comment = fc.oneof(
  secret.map((text) => `/* ${text.replaceAll('*', '')} */`),
  secret.map((text) => `-- ${text.replaceAll('\n', '')}\n`),
  secret.map((text) => `# ${text.replaceAll('\n', '')}\n`),
);

const code = fc.constantFrom('SELECT', 'FROM', 'WHERE', 'AND', 'IN', 'INSERT INTO', 'VALUES', 'orders', 'col', '`my col`', '@v', '@@sql_mode', '?', '=', '(', ')', ',', ';', '.', '-', '+', '*');
const space = fc.constantFrom(' ', '  ', '\n', '\t', '');

function statement(escapes: boolean): fc.Arbitrary<string> {
  const piece = fc.oneof({ weight: 3, arbitrary: code }, { weight: 2, arbitrary: literal(escapes) }, { weight: 1, arbitrary: comment });
  const executable = fc.array(fc.oneof(code, literal(escapes).filter((text) => !text.includes('*/'))), { maxLength: 4 }).map((parts) => `/*!100100 ${parts.join(' ')} */`);
  return fc.array(fc.tuple(fc.oneof({ weight: 6, arbitrary: piece }, { weight: 1, arbitrary: executable }), space), { minLength: 1, maxLength: 14 }).map((parts) =>
    // A space after each piece keeps words apart; `space` may add more, or none where it cannot merge two words.
    parts.map(([text, gap]) => text + (gap === '' ? ' ' : gap)).join(''),
  );
}

describe('sanitizeSql properties', () => {
  for (const escapes of [true, false]) {
    it(`never shows a literal or a comment of a statement written ${escapes ? 'with' : 'without'} backslash escapes`, () => {
      fc.assert(
        fc.property(statement(escapes), (sql) => {
          const out = sanitizeSql(sql);
          assert.ok(!out.includes('zq'), `${JSON.stringify(sql)} → ${JSON.stringify(out)}`);
          assert.ok(!/[0-9]/.test(out), `a digit survived: ${JSON.stringify(sql)} → ${JSON.stringify(out)}`);
        }),
        { numRuns: 3000 },
      );
    });
  }

  it('never throws and never grows the text, whatever it is given', () => {
    const pieces = fc.constantFrom("'", '"', '`', '\\', '/*', '*/', '/*!', '/*!999999', '/*M!', '--', '-- ', '#', '\n', 'x', 'X', '_a', '1', '.', 'e', '-', '?', ' ', 'é', '\0');
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.array(pieces, { maxLength: 40 }).map((parts) => parts.join(''))), (sql) => {
        const out = sanitizeSql(sql);
        assert.equal(typeof out, 'string');
        assert.ok(out.length <= sql.length, `${JSON.stringify(sql)} → ${JSON.stringify(out)}`);
      }),
      { numRuns: 5000 },
    );
  });

  it('stays linear on long hostile texts (1 MiB each)', () => {
    const size = 1 << 20;
    for (const unit of ["'\\'", '1e-', "x'", '/*!', '-- \n', 'a.1.', '"\\"\'', "'', "]) {
      const sql = 'SELECT ' + unit.repeat(Math.ceil(size / unit.length));
      const started = performance.now();
      sanitizeSql(sql);
      const ms = performance.now() - started;
      // ~50 ms on the 2-core CI machine; a quadratic reading would take minutes.
      assert.ok(ms < 3000, `${JSON.stringify(unit)}: ${ms.toFixed(0)} ms`);
    }
  });
});
