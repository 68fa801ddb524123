import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { encodeProcessKill } from '../../../src/engines/mysql/codec/process-kill.ts';
import { CLIENT_CONNECTION_ID_BASE, nextClientConnectionId, SessionDirectory, translateKill } from '../../../src/engines/mysql/directory.ts';

const query = (sql: string) => Buffer.concat([Buffer.of(0x03), Buffer.from(sql, 'utf8')]);

describe('SessionDirectory and translateKill', () => {
  const ORDERS = 'spiffe://test/ns/shop/sa/orders';
  const OTHER = 'spiffe://test/ns/shop/sa/analytics';
  // The ids meshgate's greeting gives two sessions (its own range), and their MariaDB threads.
  const C3 = CLIENT_CONNECTION_ID_BASE + 3;
  const C4 = CLIENT_CONNECTION_ID_BASE + 4;
  const directory = new SessionDirectory();
  directory.add(C3, { spiffeId: ORDERS, upstreamConnectionId: 4001 });
  directory.add(C4, { spiffeId: OTHER, upstreamConnectionId: 4002 });
  const frameOf = (payload: Buffer) => ({ seq: 0, lastSeq: 0, payload, raw: encodeMessage(payload, 0) });
  const translate = (payload: Buffer, spiffeId = ORDERS) => {
    const command = decodeCommand(payload);
    assert.equal(command.kind, 'relay');
    return translateKill(frameOf(payload), command as Extract<typeof command, { kind: 'relay' }>, directory, spiffeId);
  };

  it('maps meshgate ids to upstream ids for the same identity', () => {
    assert.deepEqual(directory.resolveKill(C3, ORDERS), { allow: true, upstreamConnectionId: 4001 });
    assert.deepEqual(directory.resolveKill(4001, ORDERS), { allow: true, upstreamConnectionId: 4001 });
    assert.deepEqual(directory.resolveKill(999, ORDERS), { allow: true, upstreamConnectionId: 999 });
    assert.equal(directory.resolveKill(C4, ORDERS).allow, false);
    assert.equal(directory.resolveKill(4002, ORDERS).allow, false);
  });

  it('rewrites the statement and COM_PROCESS_KILL, and refuses another identity', () => {
    const statement = translate(query(`KILL QUERY ${C3}`));
    assert.ok('frame' in statement);
    assert.deepEqual(statement.frame.raw, encodeMessage(query('KILL QUERY 4001'), 0));
    assert.equal(statement.text, 'KILL QUERY 4001');
    const command = translate(encodeProcessKill(C3));
    assert.ok('frame' in command);
    assert.deepEqual(command.frame.payload, encodeProcessKill(4001));
    const refused = translate(query(`KILL ${C4}`));
    assert.ok('refusal' in refused && refused.refusal.code === 'MG_POLICY_DENIED');
    const passed = translate(query('SELECT 3'));
    assert.ok('frame' in passed && passed.text === null && passed.frame.raw.equals(encodeMessage(query('SELECT 3'), 0)));
  });

  it('forgets a session once removed', () => {
    const d = new SessionDirectory();
    const id = CLIENT_CONNECTION_ID_BASE + 8;
    d.add(id, { spiffeId: OTHER, upstreamConnectionId: 5000 });
    d.remove(id);
    assert.deepEqual(d.resolveKill(id, ORDERS), { allow: true, upstreamConnectionId: id });
    assert.deepEqual(d.resolveKill(5000, ORDERS), { allow: true, upstreamConnectionId: 5000 });
  });

  it('one number never names two sessions: KILL <CONNECTION_ID()> reaches the session whose MariaDB thread it is, even where an old greeting id had the same number', () => {
    const d = new SessionDirectory();
    // Before, meshgate counted greeting ids from 1, so session A's greeting id could equal
    // session B's MariaDB thread id, and `KILL <B's CONNECTION_ID()>` killed A.
    d.add(7, { spiffeId: ORDERS, upstreamConnectionId: 9001 });
    d.add(CLIENT_CONNECTION_ID_BASE + 1, { spiffeId: ORDERS, upstreamConnectionId: 7 });
    assert.deepEqual(d.resolveKill(7, ORDERS), { allow: true, upstreamConnectionId: 7 });
  });

  it('greeting ids come from their own range, below 2^31, each one new', () => {
    const ids = Array.from({ length: 1000 }, () => nextClientConnectionId());
    assert.ok(ids.every((id) => id > CLIENT_CONNECTION_ID_BASE && id < 2 ** 31), `ids: ${ids.slice(0, 3).join(', ')}…`);
    assert.equal(new Set(ids).size, ids.length);
  });
});
