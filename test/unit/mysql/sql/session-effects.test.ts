import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { sessionEffects } from '../../../../src/engines/mysql/sql/session-effects.ts';
import { splitStatements } from '../../../../src/engines/mysql/sql/statements.ts';

const sqlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'USE ', 'use', 'db1', '`d;b`', 'SET ', 'profiling', '=', '1', 'OFF', ';', ' ', '\n', "'", '"', '`', '\\', "'a;b'", '/* ; */',
        '/*!40101 ', '*/', '-- x\n', '#;\n', '@@session.', 'SESSION ', 'GLOBAL ', ',', '(', ')', 'SELECT 1',
      ),
      fc.string({ maxLength: 5 }),
    ),
    { maxLength: 16 },
  )
  .map((parts) => parts.join(''));

describe('splitStatements', () => {
  it('cuts only at top-level semicolons', () => {
    assert.deepEqual(splitStatements("USE a; SELECT ';'; /* ; */ SELECT `;`", true), ['USE a', " SELECT ';'", ' /* ; */ SELECT `;`']);
    assert.deepEqual(splitStatements('SELECT 1 -- ;\n; USE b', true), ['SELECT 1 -- ;\n', ' USE b']);
    assert.deepEqual(splitStatements("/*!40101 SET a=1; SET b=2 */; USE c", true), ['/*!40101 SET a=1', ' SET b=2 */', ' USE c']);
    assert.deepEqual(splitStatements("SELECT 'x\\'; USE d", true), ["SELECT 'x\\'; USE d"]);
    assert.deepEqual(splitStatements("SELECT 'x\\'; USE d", false), ["SELECT 'x\\'", ' USE d']);
  });

  it('loses and adds nothing: the pieces joined by ";" are the text', () => {
    fc.assert(
      fc.property(sqlish, fc.boolean(), (sql, escapes) => {
        assert.equal(splitStatements(sql, escapes).join(';'), sql);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('sessionEffects', () => {
  it('costs nothing for statements that neither USE nor profile', () => {
    assert.equal(sessionEffects('SELECT * FROM users WHERE id = 1'), null);
    assert.equal(sessionEffects('SELECT * FROM t USE INDEX (i)'), null);
  });

  it('reads the databases USE switches to, in order', () => {
    assert.deepEqual(sessionEffects('USE shop')?.uses, ['shop']);
    assert.deepEqual(sessionEffects('use `my db` ;')?.uses, ['my db']);
    assert.deepEqual(sessionEffects('/* c */ USE /* d */ `a``b`')?.uses, ['a`b']);
    assert.deepEqual(sessionEffects('USE a; SELECT 1; USE b')?.uses, ['a', 'b']);
    assert.deepEqual(sessionEffects("SELECT 'x'; use c")?.possibleUses, ['c']);
  });

  it('checks every database either sql_mode could USE, and refuses what it cannot read', () => {
    const ambiguous = sessionEffects("SELECT 'x\\'; USE secret; SELECT '");
    assert.deepEqual(ambiguous?.possibleUses, ['secret']);
    assert.equal(sessionEffects('/*!40101 USE hidden */')?.unreadableUse, true);
    assert.equal(sessionEffects('USE "quoted"')?.unreadableUse, true);
    assert.equal(sessionEffects('USE a b')?.unreadableUse, true);
    assert.deepEqual(sessionEffects('/*!40101 USE hidden */')?.uses, []);
  });

  it('follows SET of the session profiling variable in each of its spellings', () => {
    const cases: Array<[string, boolean | null]> = [
      ['SET profiling = 1', true],
      ['set profiling=ON', true],
      ['SET SESSION profiling = 1', true],
      ['SET LOCAL profiling = TRUE', true],
      ['SET @@profiling = 1', true],
      ['SET @@session.profiling = 1', true],
      ["SET sql_mode = CONCAT(@@sql_mode, ',X'), profiling = 'ON'", true],
      ['SET profiling = 0', false],
      ['SET profiling = OFF', false],
      ['SET profiling = DEFAULT', false],
      ['SET profiling = 1, profiling = 0', false],
      ['SET profiling = IF(1, 1, 0)', true],
      ['SET @profiling = 1', null],
      ['SET profiling_history_size = 5', null],
      ['SET GLOBAL profiling = 1', null],
      ['SET STATEMENT profiling = 1 FOR SELECT 1', null],
      ['SELECT 1; SET profiling = 1', true],
    ];
    for (const [sql, expected] of cases) {
      assert.equal(sessionEffects(sql)?.profiling ?? null, expected, sql);
    }
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(sqlish, (sql) => {
        const effects = sessionEffects(sql);
        if (effects !== null) for (const db of effects.uses) assert.ok(effects.possibleUses.includes(db));
      }),
      { numRuns: 3000 },
    );
  });
});
