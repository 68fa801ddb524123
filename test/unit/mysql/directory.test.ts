import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { encodeProcessKill } from '../../../src/engines/mysql/codec/process-kill.ts';
import { SessionDirectory, translateKill } from '../../../src/engines/mysql/directory.ts';

const query = (sql: string) => Buffer.concat([Buffer.of(0x03), Buffer.from(sql, 'utf8')]);

describe('SessionDirectory and translateKill', () => {
  const ORDERS = 'spiffe://test/ns/shop/sa/orders';
  const OTHER = 'spiffe://test/ns/shop/sa/analytics';
  const directory = new SessionDirectory();
  directory.add(3, { spiffeId: ORDERS, upstreamConnectionId: 4001 });
  directory.add(4, { spiffeId: OTHER, upstreamConnectionId: 4002 });
  const frameOf = (payload: Buffer) => ({ seq: 0, lastSeq: 0, payload, raw: encodeMessage(payload, 0) });
  const translate = (payload: Buffer, spiffeId = ORDERS) => {
    const command = decodeCommand(payload);
    assert.equal(command.kind, 'relay');
    return translateKill(frameOf(payload), command as Extract<typeof command, { kind: 'relay' }>, directory, spiffeId);
  };

  it('maps meshgate ids to upstream ids for the same identity', () => {
    assert.deepEqual(directory.resolveKill(3, ORDERS), { allow: true, upstreamConnectionId: 4001 });
    assert.deepEqual(directory.resolveKill(4001, ORDERS), { allow: true, upstreamConnectionId: 4001 });
    assert.deepEqual(directory.resolveKill(999, ORDERS), { allow: true, upstreamConnectionId: 999 });
    assert.equal(directory.resolveKill(4, ORDERS).allow, false);
    assert.equal(directory.resolveKill(4002, ORDERS).allow, false);
  });

  it('rewrites the statement and COM_PROCESS_KILL, and refuses another identity', () => {
    const statement = translate(query('KILL QUERY 3'));
    assert.ok('frame' in statement);
    assert.deepEqual(statement.frame.raw, encodeMessage(query('KILL QUERY 4001'), 0));
    assert.equal(statement.text, 'KILL QUERY 4001');
    const command = translate(encodeProcessKill(3));
    assert.ok('frame' in command);
    assert.deepEqual(command.frame.payload, encodeProcessKill(4001));
    const refused = translate(query('KILL 4'));
    assert.ok('refusal' in refused && refused.refusal.code === 'MG_POLICY_DENIED');
    const passed = translate(query('SELECT 3'));
    assert.ok('frame' in passed && passed.text === null && passed.frame.raw.equals(encodeMessage(query('SELECT 3'), 0)));
  });

  it('forgets a session once removed', () => {
    const d = new SessionDirectory();
    d.add(8, { spiffeId: OTHER, upstreamConnectionId: 5000 });
    d.remove(8);
    assert.deepEqual(d.resolveKill(8, ORDERS), { allow: true, upstreamConnectionId: 8 });
    assert.deepEqual(d.resolveKill(5000, ORDERS), { allow: true, upstreamConnectionId: 5000 });
  });
});
