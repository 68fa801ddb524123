/**
 * What a span says about an audit event: the stable database conventions, meshgate's own
 * attributes, names, and errors, for statements, Firestore calls and logins, in each
 * queryText mode. The events are the audit's own shapes (test/unit/audit/helpers.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RpcEvent } from '../../../src/audit/index.ts';
import {
  loginAttributes,
  loginError,
  loginSpanName,
  rpcAttributes,
  rpcError,
  rpcSpanName,
  statementAttributes,
  statementError,
  statementSpanName,
  type AttributeOptions,
} from '../../../src/telemetry/span-attributes.ts';
import { connectionEvent, IDENTITY, statementEvent } from '../audit/helpers.ts';

const MARIADB = { address: 'mariadb.db.svc', port: 3306 };
const OPTIONS: AttributeOptions = { queryText: 'sanitized', mysqlServer: MARIADB, firestoreServer: { address: 'firestore.googleapis.com', port: 443 }, firestoreProject: 'shop-prod' };

function rpcEvent(overrides: Partial<RpcEvent> = {}): RpcEvent {
  return {
    type: 'rpc',
    time: '2025-01-01T00:00:00.000Z',
    sessionId: 'f-1',
    engine: 'firestore',
    peer: { address: '10.0.0.9', port: 5000 },
    identity: IDENTITY,
    xfcc: null,
    method: 'google.firestore.v1.Firestore/RunQuery',
    operation: 'read',
    paths: ['orders/o-1/items', 'orders/o-2/items'],
    decision: 'allow',
    rule: 'fs/orders',
    reason: 'allowed by fs/orders',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    status: 0,
    documents: 3,
    durationUs: 900,
    outcome: 'completed',
    error: null,
    ...overrides,
  };
}

describe('statement spans', () => {
  const event = statementEvent(1, { statement: "SELECT * FROM orders WHERE owner = 'ada@example.com' AND id > 10 /*traceparent='00-…'*/", verbs: ['SELECT'] });

  it('carry the stable database attributes and who, which rule, what was decided and which role', () => {
    assert.deepEqual(statementAttributes(event, OPTIONS), {
      'db.system.name': 'mariadb',
      'db.namespace': 'shop',
      'db.operation.name': 'SELECT',
      'db.query.text': 'SELECT * FROM orders WHERE owner = ? AND id > ?',
      'db.response.returned_rows': 1,
      'server.address': 'mariadb.db.svc',
      'server.port': 3306,
      'meshgate.identity': IDENTITY.spiffeId,
      'meshgate.auth_method': 'mtls',
      'meshgate.session.id': 's-1',
      'meshgate.decision': 'allow',
      'meshgate.outcome': 'completed',
      'meshgate.mysql.command': 'query',
      'meshgate.rows_affected': 0,
      'meshgate.rule': 'orders-read',
      'meshgate.role': 'reader',
      'meshgate.upstream.connection_id': 7,
    });
    assert.equal(statementSpanName(event), 'SELECT shop');
    assert.equal(statementError(event, 'sanitized'), null);
  });

  it('hold the text as audited with queryText full, and none with none', () => {
    assert.equal(statementAttributes(event, { ...OPTIONS, queryText: 'full' })['db.query.text'], event.statement);
    assert.equal('db.query.text' in statementAttributes(event, { ...OPTIONS, queryText: 'none' }), false);
  });

  it('sanitize a text the audit cut inside a literal', () => {
    const cut = statementEvent(2, { statement: "INSERT INTO t VALUES ('a very long sec", truncated: true });
    assert.equal(statementAttributes(cut, OPTIONS)['db.query.text'], 'INSERT INTO t VALUES (?');
  });

  it('name the operation of several statements as a batch, and a command without SQL by the command', () => {
    assert.equal(statementSpanName(statementEvent(3, { verbs: ['INSERT', 'INSERT'], verb: 'INSERT' })), 'BATCH INSERT shop');
    assert.equal(statementSpanName(statementEvent(4, { verbs: ['SELECT', 'DELETE'] })), 'BATCH shop');
    assert.equal(statementSpanName(statementEvent(5, { command: 'init_db', verb: null, verbs: [], statement: null, database: null })), 'INIT_DB');
    assert.equal(statementSpanName(statementEvent(6, { database: null })), 'SELECT');
  });

  it('mark MariaDB’s error with its number, and its message (which may quote data) only with full', () => {
    const failed = statementEvent(7, { outcome: 'failed', error: { code: 1062, message: "Duplicate entry 'ada@example.com' for key 'owner'", sqlState: '23000' } });
    assert.equal(statementAttributes(failed, OPTIONS)['db.response.status_code'], '1062');
    assert.deepEqual(statementError(failed, 'sanitized'), { type: '1062', message: 'error 1062 (SQLSTATE 23000)' });
    assert.deepEqual(statementError(failed, 'full'), { type: '1062', message: failed.error!.message });
  });

  it('mark meshgate’s refusal with its code and message, and no database status', () => {
    const refused = statementEvent(8, { decision: 'deny', rule: null, outcome: 'failed', error: { code: 'MG_POLICY_DENIED', message: 'database x is not granted' } });
    assert.equal('db.response.status_code' in statementAttributes(refused, OPTIONS), false);
    assert.equal('meshgate.rule' in statementAttributes(refused, OPTIONS), false);
    assert.deepEqual(statementError(refused, 'sanitized'), { type: 'MG_POLICY_DENIED', message: 'database x is not granted' });
  });

  it('leave the server out when it is not known', () => {
    const attributes = statementAttributes(event, { queryText: 'sanitized' });
    assert.equal('server.address' in attributes || 'server.port' in attributes, false);
  });
});

describe('Firestore call spans', () => {
  it('name the call and its collection, with the rpc and database attributes, document ids kept out', () => {
    const event = rpcEvent();
    assert.equal(rpcSpanName(event), 'RunQuery items');
    assert.deepEqual(rpcAttributes(event, OPTIONS), {
      'db.system.name': 'gcp.firestore',
      'db.operation.name': 'RunQuery',
      'db.namespace': 'shop-prod',
      'db.collection.name': 'items',
      'rpc.system.name': 'grpc',
      'rpc.method': 'google.firestore.v1.Firestore/RunQuery',
      'rpc.status_code': 'OK',
      'client.address': '10.0.0.9',
      'client.port': 5000,
      'server.address': 'firestore.googleapis.com',
      'server.port': 443,
      'meshgate.identity': IDENTITY.spiffeId,
      'meshgate.auth_method': 'mtls',
      'meshgate.session.id': 'f-1',
      'meshgate.decision': 'allow',
      'meshgate.outcome': 'completed',
      'meshgate.firestore.documents': 3,
      'meshgate.firestore.operation': 'read',
      'meshgate.rule': 'fs/orders',
      'meshgate.firestore.paths': ['orders/?/items', 'orders/?/items'],
    });
    assert.deepEqual(rpcAttributes(event, { ...OPTIONS, queryText: 'full' })['meshgate.firestore.paths'], event.paths);
    assert.equal('meshgate.firestore.paths' in rpcAttributes(event, { ...OPTIONS, queryText: 'none' }), false);
  });

  it('name no collection when the paths are in several', () => {
    const event = rpcEvent({ method: 'google.firestore.v1.Firestore/Commit', paths: ['orders/o-1', 'accounts/a-1'] });
    assert.equal(rpcSpanName(event), 'Commit');
    assert.equal('db.collection.name' in rpcAttributes(event, OPTIONS), false);
    assert.equal(rpcSpanName(rpcEvent({ method: 'google.firestore.v1.Firestore/BeginTransaction', paths: [] })), 'BeginTransaction');
  });

  it('mark a refusal with meshgate’s code, and Firestore’s failure with its status, its message only with full', () => {
    const denied = rpcEvent({ decision: 'deny', status: 7, outcome: 'failed', error: { code: 'MG_POLICY_DENIED', message: 'orders/o-1 is not granted' } });
    assert.equal(rpcAttributes(denied, OPTIONS)['db.response.status_code'], 'PERMISSION_DENIED');
    assert.deepEqual(rpcError(denied, 'sanitized'), { type: 'MG_POLICY_DENIED', message: 'orders/o-1 is not granted' });
    const missing = rpcEvent({ status: 5, outcome: 'failed', error: { code: 5, message: 'no document orders/o-9' } });
    assert.deepEqual(rpcError(missing, 'sanitized'), { type: 'NOT_FOUND', message: 'NOT_FOUND' });
    assert.deepEqual(rpcError(missing, 'full'), { type: 'NOT_FOUND', message: 'no document orders/o-9' });
  });
});

describe('login spans', () => {
  it('say who logged in, what policy decided, which role and connection it got', () => {
    const event = connectionEvent(1);
    assert.equal(loginSpanName(event), 'mysql login');
    assert.deepEqual(loginAttributes(event, OPTIONS), {
      'db.system.name': 'mariadb',
      'db.namespace': 'shop',
      'client.address': '10.0.0.5',
      'client.port': 40001,
      'server.address': 'mariadb.db.svc',
      'server.port': 3306,
      'meshgate.identity': IDENTITY.spiffeId,
      'meshgate.auth_method': 'mtls',
      'meshgate.session.id': 's-1',
      'meshgate.decision': 'allow',
      'meshgate.reason': 'allowed by orders-read',
      'meshgate.rule': 'orders-read',
      'meshgate.role': 'reader',
      'meshgate.upstream.connection_id': 7,
      'meshgate.tls.protocol': 'TLSv1.3',
    });
    assert.equal(loginError(event), null);
  });

  it('mark a refusal, and count the refusals a summary stands for', () => {
    const refused = connectionEvent(2, { identity: null, decision: 'deny', rule: null, upstreamRole: null, upstreamConnectionId: null, error: { code: 'MG_CLIENT_CERT_MISSING', message: 'no client certificate' }, repeats: { count: 40, since: '2025-01-01T00:00:00.000Z' } });
    const attributes = loginAttributes(refused, OPTIONS);
    assert.equal(attributes['meshgate.refusals.repeats'], 40);
    assert.equal('meshgate.identity' in attributes, false);
    assert.deepEqual(loginError(refused), { type: 'MG_CLIENT_CERT_MISSING', message: 'no client certificate' });
  });
});
