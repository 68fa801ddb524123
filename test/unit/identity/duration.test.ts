import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { formatDuration, parseDuration } from '../../../src/identity/duration.ts';

describe('parseDuration', () => {
  for (const [text, seconds] of [['90s', 90], ['30m', 1800], ['1h', 3600], ['4h', 14_400], ['7d', 604_800], ['365d', 31_536_000]] as const) {
    it(`${text} = ${seconds}s`, () => assert.equal(parseDuration(text), seconds));
  }
  for (const bad of ['', '1', 'h', '1.5h', '-1h', '0s', '1w', '1h30m', '1 h', 'PT1H', '1H']) {
    it(`rejects ${JSON.stringify(bad)} with MG_USAGE`, () => {
      assert.throws(
        () => parseDuration(bad, '--ttl'),
        (e: unknown) => isMeshgateError(e) && e.code === 'MG_USAGE' && e.message.includes('--ttl'),
      );
    });
  }
  it('formats back in the largest exact unit', () => {
    assert.deepEqual([3600, 90, 86_400 * 90, 1800, 61].map(formatDuration), ['1h', '90s', '90d', '30m', '61s']);
  });
});
