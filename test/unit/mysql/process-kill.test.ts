import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProcessKill, encodeProcessKill } from '../../../src/engines/mysql/codec/process-kill.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

describe('COM_PROCESS_KILL', () => {
  it('round-trips the connection id', () => {
    assert.deepEqual(encodeProcessKill(0x01020304), Buffer.from('0c04030201', 'hex'));
    assert.equal(decodeProcessKill(Buffer.from('0c04030201', 'hex')), 0x01020304);
  });

  it('refuses a payload without an id', () => {
    assert.throws(() => decodeProcessKill(Buffer.from('0c0403', 'hex')), isMeshgateError);
  });
});
