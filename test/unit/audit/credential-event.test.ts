/**
 * Credential events: the recorder builds them from what the admin API and the sweep report
 * (who asked, the rule, the lease), derives the outcome from the error's kind, and never
 * has a password to write.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { AuditRecorder } from '../../../src/audit/recorder.ts';
import { summarize } from '../../../src/audit/summary.ts';
import type { CredentialEvent } from '../../../src/audit/types.ts';
import { mgError } from '../../../src/errors/index.ts';
import type { Identity } from '../../../src/identity/types.ts';
import type { LeaseRecord } from '../../../src/store/types.ts';
import { memoryAuditSink } from '../../helpers/audit.ts';

const ci: Identity = {
  spiffeId: 'spiffe://cluster.local/ns/ci/sa/deploy',
  trustDomain: 'cluster.local',
  namespace: 'ci',
  serviceAccount: 'deploy',
  principal: 'cluster.local/ns/ci/sa/deploy',
  authMethod: 'jwt',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: 'ab' },
  claims: { sub: 'repo:acme/shop' },
};

const lease: LeaseRecord = {
  id: 'lease_abc',
  purpose: 'issued',
  principal: ci.spiffeId,
  role: 'shop_migrator',
  database: 'shop',
  username: 'mg-ci.deploy-abcdefgh',
  userHost: '%',
  state: 'active',
  createdAt: Date.parse('2025-01-01T00:00:00Z'),
  expiresAt: Date.parse('2025-01-01T00:15:00Z'),
  maxExpiresAt: Date.parse('2025-01-01T00:15:00Z'),
  updatedAt: 0,
  revokedAt: null,
  revokeReason: null,
  owner: 'a',
};

const base = { requestId: 'r1', peer: { address: '10.0.0.9', port: 5555 } } as const;

describe('credential events', () => {
  it('an issue names who asked, the rule, role, lease, account and TTL, and goes out on meshgate:mysql:credential', () => {
    const sink = memoryAuditSink<CredentialEvent>();
    const published: unknown[] = [];
    const listener = (event: unknown) => published.push(event);
    diagnostics.subscribe('meshgate:mysql:credential', listener);
    try {
      new AuditRecorder(sink).credential({ ...base, action: 'issue', identity: ci, decision: 'allow', rule: 'ci/migrations', reason: 'allowed by rule ci/migrations as role shop_migrator', lease, error: null });
    } finally {
      diagnostics.unsubscribe('meshgate:mysql:credential', listener);
    }
    const [event] = sink.events;
    assert.deepEqual({ ...event, time: undefined }, {
      type: 'credential',
      time: undefined,
      sessionId: 'r1',
      engine: 'mysql',
      action: 'issue',
      outcome: 'completed',
      credential: 'direct',
      peer: { address: '10.0.0.9', port: 5555 },
      identity: { spiffeId: ci.spiffeId, principal: ci.principal, trustDomain: 'cluster.local', namespace: 'ci', serviceAccount: 'deploy', authMethod: 'jwt' },
      decision: 'allow',
      rule: 'ci/migrations',
      reason: 'allowed by rule ci/migrations as role shop_migrator',
      principal: ci.spiffeId,
      leaseId: 'lease_abc',
      account: 'mg-ci.deploy-abcdefgh',
      role: 'shop_migrator',
      database: 'shop',
      ttlSeconds: 900,
      expiresAt: '2025-01-01T00:15:00.000Z',
      error: null,
    });
    assert.deepEqual(published, [event]);
    assert.doesNotMatch(JSON.stringify(event), /claims|repo:acme/);
  });

  it('a refusal is refused, a fault is failed; what was asked is kept without a lease', () => {
    const sink = memoryAuditSink<CredentialEvent>();
    const recorder = new AuditRecorder(sink);
    const asked = { ...base, action: 'issue' as const, identity: ci, principal: ci.spiffeId, database: 'shop', ttlMs: 600_000, lease: null };
    recorder.credential({ ...asked, decision: 'deny', rule: null, reason: 'no rule', error: mgError('MG_POLICY_DENIED', 'no rule') });
    recorder.credential({ ...asked, decision: 'allow', rule: 'ci/migrations', reason: 'allowed', role: 'shop_migrator', error: mgError('MG_DIRECT_CREDS_LIMIT', 'too many') });
    recorder.credential({ ...asked, decision: 'allow', rule: 'ci/migrations', reason: 'allowed', role: 'shop_migrator', error: mgError('MG_UPSTREAM_UNAVAILABLE', 'MariaDB is down') });
    assert.deepEqual(
      sink.events.map((e) => [e.outcome, e.decision, e.rule, e.role, e.leaseId, e.ttlSeconds, e.database, e.principal, e.credential, e.error?.code]),
      [
        ['refused', 'deny', null, null, null, 600, 'shop', ci.spiffeId, 'direct', 'MG_POLICY_DENIED'],
        ['refused', 'allow', 'ci/migrations', 'shop_migrator', null, 600, 'shop', ci.spiffeId, 'direct', 'MG_DIRECT_CREDS_LIMIT'],
        ['failed', 'allow', 'ci/migrations', 'shop_migrator', null, 600, 'shop', ci.spiffeId, 'direct', 'MG_UPSTREAM_UNAVAILABLE'],
      ],
    );
  });

  it('the sweep and rotations: no caller, the admin account, and a line for audit tail', () => {
    const sink = memoryAuditSink<CredentialEvent>();
    const recorder = new AuditRecorder(sink);
    recorder.credential({ requestId: 'sweep-1', peer: null, action: 'revoke', identity: null, decision: 'allow', rule: null, reason: 'expired', lease, error: null });
    recorder.credential({ requestId: 'r2', peer: null, action: 'rotate', identity: null, decision: 'allow', rule: null, reason: 'scheduled (rotateAdminEvery)', account: 'meshgate_admin', lease: null, error: null });
    const [expired, rotated] = sink.events;
    assert.deepEqual([expired!.identity, expired!.action, expired!.reason, expired!.account, expired!.credential], [null, 'revoke', 'expired', lease.username, 'direct']);
    assert.deepEqual([rotated!.credential, rotated!.account, rotated!.leaseId, rotated!.principal, rotated!.ttlSeconds], ['admin', 'meshgate_admin', null, null, null]);
    const line = summarize({ seq: 7, ...expired! });
    assert.match(line, /^#7 \S+ credential {2}- revoke completed direct lease=lease_abc account=mg-ci\.deploy-abcdefgh principal=spiffe:\/\/cluster\.local\/ns\/ci\/sa\/deploy role=shop_migrator rule=- expired$/);
  });
});
