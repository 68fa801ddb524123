/**
 * What `meshgate creds ...` and the admin API share: policy decides whether an identity
 * gets a credential for a database and in which role, the lease manager makes it, and
 * both print the same shapes. A password appears only in the IssuedView handed back to the
 * caller; lease views never carry one (the store has none).
 */
import type { MeshgateConfig } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';
import { parseDuration, type Identity } from '../identity/index.ts';
import type { CompiledPolicy, Decision } from '../policy/index.ts';
import { LimitExceededError, type RateLimiter, type Throttle } from '../throttle/index.ts';
import type { IssuedCredential, LeaseManager, RevokeSelector } from '../credentials/index.ts';
import type { LeaseRecord } from '../store/index.ts';

/** The part of the lease manager issuing, listing and revoking need (tests pass fakes). */
export type LeaseOperations = Pick<LeaseManager, 'issue' | 'list' | 'revoke'>;

export interface UpstreamAddress {
  readonly host: string;
  readonly port: number;
}

/** Handed to the caller once: where to connect and as whom. */
export interface IssuedView {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly database: string;
  readonly leaseId: string;
  /** ISO 8601. */
  readonly expiresAt: string;
  readonly principal: string;
  readonly role: string;
  /** The policy rule that allowed it. */
  readonly ruleId: string | null;
}

/** A lease as `creds list` and `GET /v1/leases` show it: no secret in it. */
export interface LeaseView {
  readonly id: string;
  readonly purpose: string;
  readonly principal: string;
  readonly role: string;
  readonly database: string | null;
  readonly username: string;
  readonly userHost: string;
  readonly state: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
  readonly revokeReason: string | null;
}

export const LIVE_STATES = ['creating', 'active', 'revoking'] as const;
export const ALL_STATES = ['creating', 'active', 'revoking', 'revoked'] as const;

export function leaseView(lease: LeaseRecord): LeaseView {
  return {
    id: lease.id,
    purpose: lease.purpose,
    principal: lease.principal,
    role: lease.role,
    database: lease.database,
    username: lease.username,
    userHost: lease.userHost,
    state: lease.state,
    createdAt: new Date(lease.createdAt).toISOString(),
    expiresAt: new Date(lease.expiresAt).toISOString(),
    revokedAt: lease.revokedAt === null ? null : new Date(lease.revokedAt).toISOString(),
    revokeReason: lease.revokeReason,
  };
}

/** `15m` → milliseconds; undefined stays undefined (the configured issuedTtl applies). */
export function ttlMsOf(text: string | undefined, what = '--ttl'): number | undefined {
  return text === undefined ? undefined : parseDuration(text, what) * 1000;
}

export interface IssueRequest {
  readonly identity: Identity;
  readonly database: string;
  readonly ttlMs?: number | undefined;
  readonly policy: CompiledPolicy;
  readonly leases: Pick<LeaseOperations, 'issue'>;
  readonly upstream: UpstreamAddress;
  /** Issues per identity (upstream.credentials.issuedPerMinute); absent: no rate. */
  readonly rate?: RateLimiter | undefined;
  /** The service classes: an issue is a login of the deciding rule's class (its `logins` rates). */
  readonly throttle?: Throttle | undefined;
  readonly now?: () => number;
  /** Filled in as the request gets on, so a refusal's audit event names the rule that decided. */
  readonly trail?: IssueTrail;
}

export interface IssueTrail {
  decision?: Decision;
  lease?: LeaseRecord;
}

/**
 * Policy first, for direct credentials (only a rule with direct: true grants them), then the
 * identity's issue rate: a refused caller never causes a MariaDB account (or a store record).
 * Throws MG_POLICY_DENIED naming the deciding rule, or MG_DIRECT_CREDS_LIMIT; the lease
 * manager adds the cap on live direct leases.
 */
export async function authorizeAndIssue(request: IssueRequest): Promise<IssuedView> {
  const { identity, database } = request;
  const decision = request.policy.evaluate(identity, { engine: 'mysql', database, direct: true });
  if (request.trail !== undefined) request.trail.decision = decision;
  if (!decision.allow || decision.role === null) {
    throw mgError('MG_POLICY_DENIED', `${decision.reason}${sessionsOnly(request, decision)}; \`meshgate policy explain --direct\` shows how each rule decides`);
  }
  const verdict = request.rate?.take(identity.spiffeId, (request.now ?? Date.now)());
  if (verdict !== undefined && !verdict.allowed) {
    const perMinute = request.rate!.perMinute;
    const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    throw new LimitExceededError(
      'MG_DIRECT_CREDS_LIMIT',
      `${identity.spiffeId} asked for direct credentials more often than upstream.credentials.issuedPerMinute (${perMinute} per minute per identity) allows; ` +
        `retry in ${seconds} s, or raise upstream.credentials.issuedPerMinute`,
      seconds,
    );
  }
  const admission = request.throttle?.admit({ engine: 'mysql', kind: 'credential', serviceClass: decision.serviceClass, principal: identity.spiffeId });
  if (admission !== undefined && !admission.admitted) throw admission.error;
  admission?.release();
  const issued: IssuedCredential = await request.leases.issue(identity, decision.role, database, request.ttlMs);
  if (request.trail !== undefined) request.trail.lease = issued.lease;
  return {
    host: request.upstream.host,
    port: request.upstream.port,
    username: issued.username,
    password: issued.password,
    database,
    leaseId: issued.lease.id,
    expiresAt: new Date(issued.expiresAt).toISOString(),
    principal: identity.spiffeId,
    role: decision.role,
    ruleId: decision.ruleId,
  };
}

/** When no rule grants direct credentials, whether one grants sessions: the likeliest fix is there. */
function sessionsOnly(request: IssueRequest, direct: Decision): string {
  if (direct.ruleId !== null) return '';
  const session = request.policy.evaluate(request.identity, { engine: 'mysql', database: request.database });
  if (!session.allow || session.ruleId === null) return '';
  return `; rule ${session.ruleId} allows this identity sessions through meshgate only (add direct: true to its mariadb target if it should get direct credentials too)`;
}

/** `spiffe://td/ns/a/sa/b`, or the Istio principal form `td/ns/a/sa/b`, as leases record it. */
export function principalSelector(text: string): string {
  return text.startsWith('spiffe://') ? text : `spiffe://${text}`;
}

export function describeSelector(selector: RevokeSelector): string {
  const parts: string[] = [];
  if (selector.leaseId !== undefined) parts.push(`lease ${selector.leaseId}`);
  if (selector.principal !== undefined) parts.push(`identity ${selector.principal}`);
  if (selector.role !== undefined) parts.push(`role ${selector.role}`);
  return parts.join(' and ');
}

/** meshgate's MariaDB admin account as rotate-root reports it: the user and the password's file (null: from an env var). */
export interface AdminAccount {
  readonly user: string;
  readonly file: string | null;
}

export function adminAccountOf(config: MeshgateConfig): AdminAccount | undefined {
  const admin = config.upstream?.credentials?.admin;
  if (admin === undefined) return undefined;
  return { user: admin.user, file: 'file' in admin.password ? admin.password.file : null };
}
