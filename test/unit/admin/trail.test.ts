/**
 * What meshgate does to credentials on its own reaches the audit as credential events with
 * no caller: the sweep dropping a direct credential, and scheduled admin rotations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentialReports } from '../../../src/admin/trail.ts';
import type { CredentialFacts } from '../../../src/audit/index.ts';
import { mgError } from '../../../src/errors/index.ts';
import type { LeaseRecord } from '../../../src/store/types.ts';

const lease = (purpose: LeaseRecord['purpose']): LeaseRecord => ({
  id: `lease_${purpose}`, purpose, principal: 'spiffe://td/ns/ci/sa/deploy', role: 'shop_ro', database: 'shop', username: `mg-ci.deploy-${purpose}`, userHost: '%', state: 'revoked',
  createdAt: 0, expiresAt: 60_000, maxExpiresAt: 60_000, updatedAt: 0, revokedAt: 61_000, revokeReason: 'expired', owner: 'a',
});

describe('credential reports of the sweep and the rotation schedule', () => {
  it('a direct credential the sweep drops is a revoke event without a caller; session leases are not reported', () => {
    const events: CredentialFacts[] = [];
    const reports = credentialReports({ credential: (facts) => events.push(facts) }, 'meshgate_admin');
    reports.reaped!(lease('issued'), 'expired');
    reports.reaped!(lease('session'), 'expired');
    assert.deepEqual(events.map((e) => [e.action, e.identity, e.decision, e.reason, e.lease?.id, e.error]), [['revoke', null, 'allow', 'expired', 'lease_issued', null]]);
  });

  it('a scheduled rotation is a rotate event naming the admin account, failed when it failed', () => {
    const events: CredentialFacts[] = [];
    const reports = credentialReports({ credential: (facts) => events.push(facts) }, 'meshgate_admin');
    reports.rotated!(null);
    reports.rotated!(mgError('MG_UPSTREAM_UNAVAILABLE', 'MariaDB is down'));
    assert.deepEqual(
      events.map((e) => [e.action, e.identity, e.account, e.reason, e.error?.code ?? null]),
      [
        ['rotate', null, 'meshgate_admin', 'scheduled rotation (upstream.credentials.rotateAdminEvery)', null],
        ['rotate', null, 'meshgate_admin', 'MariaDB is down', 'MG_UPSTREAM_UNAVAILABLE'],
      ],
    );
  });
});
