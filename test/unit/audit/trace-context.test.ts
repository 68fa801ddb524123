import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { newSpanId, newTraceId } from '../../../src/audit/trace-context.ts';

describe('newTraceId / newSpanId', () => {
  it('gives distinct, valid, non-zero ids', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = newTraceId();
      assert.match(id, /^[0-9a-f]{32}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 5000);
    for (let i = 0; i < 1000; i++) assert.match(newSpanId(), /^(?!0{16})[0-9a-f]{16}$/);
  });
});
