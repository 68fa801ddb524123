/**
 * The audit side of credential operations. A request to issue, revoke or rotate carries a
 * trail of what it has established (who asked, what decided, what was asked for) and ends
 * in events the recorder builds: one per lease issued or revoked, or one for a refusal or a
 * fault, whatever stopped it. What meshgate does on its own (the sweep dropping an expired
 * direct credential, a scheduled rotation) is reported the same way, with no caller.
 */
import { randomBytes } from 'node:crypto';
import type { CredentialFacts } from '../audit/index.ts';
import type { CredentialReports } from '../credentials/index.ts';
import type { MeshgateError } from '../errors/index.ts';
import type { Identity } from '../identity/index.ts';
import type { LeaseRecord } from '../store/index.ts';

/** Where credential events go: the recorder (tests pass a fake). */
export interface CredentialAudit {
  credential(facts: CredentialFacts): void;
}

type Asked = Pick<CredentialFacts, 'principal' | 'leaseId' | 'role' | 'database' | 'ttlMs' | 'account'>;

/** The rule an admin's revoke or rotation is allowed by: the config's list, not a policy rule. */
export const ADMIN_RULE = 'admin.principals';

export const requestId = (): string => randomBytes(8).toString('hex');

export class CredentialTrail {
  identity: Identity | null = null;
  decision: 'allow' | 'deny' = 'deny';
  rule: string | null = null;
  /** The policy version that decided, when a policy rule did (not for admin operations). */
  policyVersion: string | null = null;
  asked: Asked = {};
  private ended = false;

  constructor(
    private readonly audit: CredentialAudit | undefined,
    readonly action: CredentialFacts['action'],
    private readonly peer: CredentialFacts['peer'],
    private readonly id: string = requestId(),
  ) {}

  /** Allowed by `rule` (a policy rule, or ADMIN_RULE); what was done says why in its event. */
  allow(rule: string | null): void {
    this.decision = 'allow';
    this.rule = rule;
  }

  /** Done: one event per lease, or one without a lease (a rotation; a revoke that found nothing). */
  done(leases: readonly LeaseRecord[], reason: string): void {
    for (const lease of leases.length === 0 ? [null] : leases) this.record(lease, reason, null);
  }

  /** Refused or failed: one event with what was known when it stopped. */
  failed(error: MeshgateError): void {
    this.record(null, error.message, error);
  }

  private record(lease: LeaseRecord | null, reason: string, error: MeshgateError | null): void {
    if (this.audit === undefined || (this.ended && lease === null)) return;
    this.ended = true;
    this.audit.credential({
      action: this.action,
      requestId: this.id,
      peer: this.peer,
      identity: this.identity,
      decision: this.decision,
      rule: this.rule,
      policyVersion: this.policyVersion,
      reason,
      lease,
      ...this.asked,
      error,
    });
  }
}

/**
 * Reports for the credential runtime of a running meshgate: the sweep dropping a direct
 * credential (its holder's session accounts are meshgate's own business, recorded by their
 * sessions), and scheduled rotations of the admin password.
 */
export function credentialReports(audit: CredentialAudit, adminUser: string | null): CredentialReports {
  const own = (action: CredentialFacts['action']) => new CredentialTrail(audit, action, null);
  return {
    reaped(lease, reason) {
      if (lease.purpose !== 'issued') return;
      const trail = own('revoke');
      trail.allow(null);
      trail.done([lease], reason);
    },
    rotated(error) {
      const reason = 'scheduled rotation (upstream.credentials.rotateAdminEvery)';
      const trail = own('rotate');
      trail.asked = { account: adminUser };
      if (error === null) {
        trail.allow(null);
        trail.done([], reason);
      } else {
        trail.failed(error);
      }
    },
  };
}
