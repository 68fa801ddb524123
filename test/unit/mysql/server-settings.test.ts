import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { answerableByQueryCache } from '../../../src/engines/mysql/server-settings.ts';
import { statementVerb } from '../../../src/engines/mysql/sql/index.ts';

const answerable = (mode: 'off' | 'on' | 'demand', sql: string) => answerableByQueryCache(mode, statementVerb(sql), sql);

describe('answerableByQueryCache', () => {
  it('is never so while the cache is off', () => {
    assert.equal(answerable('off', 'SELECT 1'), false);
    assert.equal(answerable('off', 'SELECT SQL_CACHE 1'), false);
  });

  it('takes every SELECT and WITH when on, but those that ask not to be cached', () => {
    for (const sql of ['SELECT * FROM t', '  (SELECT a FROM t) UNION (SELECT b FROM u)', 'WITH x AS (SELECT 1) SELECT * FROM x', '/* c */ select 1']) {
      assert.equal(answerable('on', sql), true, sql);
    }
    for (const sql of ['SELECT SQL_NO_CACHE * FROM t', 'UPDATE t SET a = 1', 'INSERT INTO t SELECT * FROM u', 'SHOW TABLES', 'CALL p()']) {
      assert.equal(answerable('on', sql), false, sql);
    }
  });

  it('takes only SQL_CACHE statements on demand', () => {
    assert.equal(answerable('demand', 'SELECT SQL_CACHE * FROM t'), true);
    assert.equal(answerable('demand', 'SELECT * FROM t'), false);
  });
});
