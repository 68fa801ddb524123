import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { serverFlavor } from '../../../../src/engines/mysql/sql/classify.ts';
import { TokenReader, type ReadingOptions } from '../../../../src/engines/mysql/sql/tokens.ts';

const MARIADB = serverFlavor('10.11.19-MariaDB')!;

/** Every token's text (strings with their quotes), or 'null' where the reader stopped. */
function tokens(sql: string, escapes = true, options: ReadingOptions = { lenient: true }): string[] {
  const r = new TokenReader(sql, escapes, MARIADB, options);
  const out: string[] = [];
  for (;;) {
    const t = r.next();
    if (t === null) return [...out, 'null'];
    if (t.kind === 'end') return out;
    out.push(`${t.executable ? '!' : ''}${sql.slice(t.start, t.end)}`);
  }
}

describe('TokenReader, lenient', () => {
  it('reads on where the strict reader stops', () => {
    assert.deepEqual(tokens("SELECT 'é', naïve FROM t", true, {}), ['SELECT', 'null']);
    // Outside quotes, what is not ASCII separates words: latin1's 0xA0 is whitespace to MariaDB.
    assert.deepEqual(tokens("SELECT 'é', naïve FROM\u00a0t"), ['SELECT', "'é'", ',', 'na', 've', 'FROM', 't']);
    assert.deepEqual(tokens('SELECT 1; DELETE FROM t', true, {}), ['SELECT', '1', ';', 'DELETE', 'FROM', 'null']);
    assert.deepEqual(tokens('SELECT 1; DELETE FROM t'), ['SELECT', '1', ';', 'DELETE', 'FROM', 't']);
    assert.deepEqual(tokens("SELECT 'open"), ['SELECT', "'open"]);
    assert.deepEqual(tokens('SELECT 1 /* open'), ['SELECT', '1']);
  });

  it('reads comments as sql_lex.cc does', () => {
    // A plain comment inside an executable one ends at its own '*/'; the executable goes on.
    assert.deepEqual(tokens('/*! SELECT /* x */ 1 */ GRANT'), ['!SELECT', '!1', 'GRANT']);
    // A line comment runs to its line's end, even over an executable comment's '*/'.
    assert.deepEqual(tokens('/*! SELECT 1 # */ 2\n, 3 */ 4'), ['!SELECT', '!1', '!,', '!3', '4']);
    // A versioned comment that does not run holds one comment of its own.
    assert.deepEqual(tokens('/*!999999 a /* b */ c */ d'), ['d']);
    assert.deepEqual(tokens('/*!50700 a */ b'), ['b']);
    // '/*m!' is a plain comment to MariaDB.
    assert.deepEqual(tokens('/*m! GRANT */ x'), ['x']);
  });

  it('reads "…" with or without escapes, as ANSI_QUOTES would', () => {
    const sql = '"a\\"b" c';
    assert.deepEqual(tokens(sql, true, { lenient: true }), ['"a\\"b"', 'c']);
    assert.deepEqual(tokens(sql, true, { lenient: true, doubleQuoteEscapes: false }), ['"a\\"', 'b', '" c']);
    assert.deepEqual(tokens("'a\\'b' c", true, { lenient: true, doubleQuoteEscapes: false }), ["'a\\'b'", 'c']);
  });

  it('never throws, stops only for a version it was not told, and covers the text in order', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom("'", '"', '`', '\\', '/*', '*/', '/*!', '/*M!', '#', '-- ', '\n', ';', 'é', 'a', '1', ' ') })),
        fc.boolean(),
        fc.boolean(),
        (sql, escapes, doubleQuoteEscapes) => {
          const r = new TokenReader(sql, escapes, MARIADB, { lenient: true, doubleQuoteEscapes });
          let last = 0;
          for (let n = 0; n <= sql.length + 1; n++) {
            const t = r.next();
            assert.notEqual(t, null, 'a server version was given');
            assert.ok(t!.start >= last && t!.end >= t!.start && t!.end <= sql.length);
            last = t!.end;
            if (t!.kind === 'end') return;
          }
          assert.fail('more tokens than characters');
        },
      ),
      { numRuns: 3000 },
    );
  });
});
