/**
 * Refused Firestore calls leave a warn line in meshgate's own log — code, peer, identity when
 * known, method — not only an audit event (Google's official emulator upstream).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { captureLog } from '../../helpers/log.ts';
import {
  encodeMessage,
  FIRESTORE_POLICY,
  FIRESTORE_SKIP,
  FIRESTORE_WORKLOADS,
  grpc,
  PERMISSION_DENIED,
  rawFirestore,
  startFirestoreFixture,
  UNAUTHENTICATED,
  type FirestoreFixture,
  type GrpcFailure,
} from '../../helpers/firestore.ts';

const PROJECT = 'mg-it-server-log';

describe('Firestore: refusals in the server log (official emulator)', { skip: FIRESTORE_SKIP, timeout: 120_000 }, () => {
  let fx: FirestoreFixture;
  const server = captureLog();
  before(async () => {
    fx = await startFirestoreFixture({ name: `fslog${randomBytes(3).toString('hex')}`, project: PROJECT, workloads: FIRESTORE_WORKLOADS, policy: FIRESTORE_POLICY, log: server.log });
  });
  after(async () => fx?.stop());

  it('permission denied: a warn line with the code, the caller and the method', async () => {
    const mark = server.lines.length;
    await assert.rejects(fx.client('analytics').doc('orders/o1').get(), (error: GrpcFailure) => error.code === PERMISSION_DENIED);
    const line = server.lines.slice(mark).find((l) => l.level === 'warn' && l.code === 'MG_POLICY_DENIED');
    assert.ok(line !== undefined, server.text());
    assert.equal(line.engine, 'firestore');
    assert.equal(line.identity, FIRESTORE_WORKLOADS.analytics);
    assert.equal(line.method, 'google.firestore.v1.Firestore/BatchGetDocuments');
    assert.match(String(line.peer), /^127\.0\.0\.1:\d+$/);
    assert.match(line.message, /^refused a Firestore call: \[MG_POLICY_DENIED\] read of document orders\/o1 denied/);
  });

  it('unauthenticated (no client certificate): a warn line without an identity', async () => {
    const mark = server.lines.length;
    const ca = fx.harness.ssl('orders').ca;
    const raw = rawFirestore(`127.0.0.1:${fx.port}`, grpc.credentials.createSsl(ca));
    try {
      const body = encodeMessage('GetDocumentRequest', { name: `projects/${PROJECT}/databases/(default)/documents/orders/o1` });
      await assert.rejects(raw.unary('GetDocument', body), (error: grpc.ServiceError) => error.code === UNAUTHENTICATED);
    } finally {
      raw.close();
    }
    const line = server.lines.slice(mark).find((l) => l.level === 'warn' && l.engine === 'firestore');
    assert.ok(line !== undefined, server.text());
    assert.equal(line.code, 'MG_CLIENT_CERT_MISSING');
    assert.equal(line.identity, null);
  });
});
