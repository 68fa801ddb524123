/** Table names read from statement texts: what the reader takes, and what it must not. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tablesOf } from '../../../src/analyze/index.ts';

const names = (sql: string) => tablesOf(sql).map((ref) => (ref.database === null ? ref.table : `${ref.database}.${ref.table}`));

describe('tables named by a statement', () => {
  const cases: [string, string[]][] = [
    ['SELECT * FROM orders o JOIN shop.items i ON i.o = o.id', ['orders', 'shop.items']],
    ['SELECT a FROM a, b AS bb, `c d` WHERE 1', ['a', 'b', 'c d']],
    ['select * from t1 left join t2 using (id) straight_join t3 on 1', ['t1', 't2', 't3']],
    ['INSERT INTO log (a) VALUES (1)', ['log']],
    ['INSERT LOW_PRIORITY IGNORE INTO `shop`.`log` SET a = 1', ['shop.log']],
    ['INSERT t SELECT * FROM u', ['t', 'u']],
    ['REPLACE INTO r VALUES (1)', ['r']],
    ['UPDATE a, b AS bb SET a.x = 1', ['a', 'b']],
    ['DELETE FROM t WHERE id = 1', ['t']],
    ['DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id', ['t1', 't2']],
    ['TRUNCATE TABLE x', ['x']],
    ['DROP TABLE IF EXISTS db.x', ['db.x']],
    ['CREATE TABLE IF NOT EXISTS n (id int)', ['n']],
    ['DESCRIBE t9', ['t9']],
    ['LOCK TABLES a READ, b WRITE', ['a', 'b']],
    ['SELECT * FROM (SELECT * FROM inner1) d', ['inner1']],
    ['WITH c AS (SELECT * FROM base), d AS (SELECT 1) SELECT * FROM c JOIN d', ['base']],
    ["SELECT 'FROM x', \"JOIN y\" FROM /* FROM z */ real_one -- FROM w\n", ['real_one']],
    ['INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = a + 1', ['t']],
    ['SELECT * FROM q WHERE id = 1 FOR UPDATE SKIP LOCKED', ['q']],
    ['SELECT a INTO @x FROM t4', ['t4']],
    ['SELECT * FROM o ORDER BY a DESC, b DESC LIMIT 1', ['o']],
    ['SELECT 1', []],
    ['SELECT 1 FROM DUAL', []],
    ['SELECT REPLACE(name, "a", "b") FROM people', ['people']],
    ['/*!40101 SELECT * FROM hidden */', ['hidden']],
    ['SELECT * FROM t1 UNION SELECT * FROM t2 ORDER BY 1', ['t1', 't2']],
  ];
  for (const [sql, expected] of cases) {
    it(JSON.stringify(sql), () => assert.deepEqual(names(sql), expected));
  }

  it('reads a hostile text in linear time and never throws', () => {
    const long = `SELECT ${'('.repeat(50_000)} FROM ${Array.from({ length: 50_000 }, (_, i) => `t${i}`).join(', ')}`;
    const started = process.hrtime.bigint();
    assert.equal(names(long).length, 50_000);
    assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2000);
    for (const odd of ['FROM', 'FROM `', "INSERT INTO '", 'UPDATE', 'FROM a.', 'JOIN ,', '\u0000FROM x']) assert.doesNotThrow(() => tablesOf(odd));
  });
});
