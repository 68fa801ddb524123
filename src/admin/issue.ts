/**
 * What `meshgate creds ...` and the admin API share: policy decides whether an identity
 * gets a credential for a database and in which role, the lease manager makes it, and
 * both print the same shapes. A password appears only in the IssuedView handed back to the
 * caller; lease views never carry one (the store has none).
 */
import type { MeshgateConfig } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';
import { parseDuration, type Identity } from '../identity/index.ts';
import type { CompiledPolicy } from '../policy/index.ts';
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
}

/**
 * Policy first: a denied caller never causes a MariaDB account (or a store record). Throws
 * MG_POLICY_DENIED naming the deciding rule.
 */
export async function authorizeAndIssue(request: IssueRequest): Promise<IssuedView> {
  const { identity, database } = request;
  const decision = request.policy.evaluate(identity, { engine: 'mysql', database });
  if (!decision.allow || decision.role === null) {
    throw mgError('MG_POLICY_DENIED', `${decision.reason}; \`meshgate policy explain\` shows how each rule decides`);
  }
  const issued: IssuedCredential = await request.leases.issue(identity, decision.role, database, request.ttlMs);
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
