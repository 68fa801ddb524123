import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditTime } from '../../../src/audit/clock.ts';

describe('auditTime', () => {
  it('formats ISO-8601 UTC with milliseconds and reuses the string within a millisecond', () => {
    assert.equal(auditTime(Date.UTC(2026, 10, 24, 16, 0, 0, 123)), '2026-11-24T16:00:00.123Z');
    assert.equal(auditTime(Date.UTC(2026, 10, 24, 16, 0, 0, 124)), '2026-11-24T16:00:00.124Z');
    assert.match(auditTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
