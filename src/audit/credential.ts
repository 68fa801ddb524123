/**
 * Credential events from the facts the admin API and the credential runtime report: who
 * asked, what decided, and the lease (whose record holds no password, so neither can the
 * event). The recorder calls this; nothing else builds one.
 */
import type { MeshgateError } from '../errors/index.ts';
import type { Identity } from '../identity/index.ts';
import { auditTime } from './clock.ts';
import { auditIdentity } from './identity.ts';
import type { CredentialEvent } from './types.ts';

/** The fields of a lease record an event names (a LeaseRecord is one). */
export interface CredentialLease {
  readonly id: string;
  readonly purpose: 'session' | 'issued';
  readonly principal: string;
  readonly role: string;
  readonly database: string | null;
  readonly username: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface CredentialFacts {
  readonly action: CredentialEvent['action'];
  /** One per request: the events of an admin revoke of several leases share it. */
  readonly requestId: string;
  readonly peer: { readonly address: string; readonly port: number } | null;
  /** Who asked; null for meshgate itself, or a caller that proved no identity. */
  readonly identity: Identity | null;
  readonly decision: 'allow' | 'deny';
  readonly rule: string | null;
  /** The version of the policy whose rule decided; absent or null when no policy rule did. */
  readonly policyVersion?: string | null;
  readonly reason: string;
  /** The lease issued or revoked, when there is one. */
  readonly lease: CredentialLease | null;
  // What was asked for, for events without a lease (refusals, rotations):
  readonly principal?: string | null;
  readonly leaseId?: string | null;
  readonly role?: string | null;
  readonly database?: string | null;
  readonly ttlMs?: number | null;
  /** The admin account a rotation is of. */
  readonly account?: string | null;
  readonly error: MeshgateError | null;
}

const FAULTS: ReadonlySet<string> = new Set(['unavailable', 'config', 'internal']);

function credentialOf(f: CredentialFacts): CredentialEvent['credential'] {
  if (f.action === 'rotate') return 'admin';
  if (f.lease !== null) return f.lease.purpose === 'issued' ? 'direct' : 'session';
  return f.action === 'issue' ? 'direct' : null;
}

export function credentialEvent(f: CredentialFacts): CredentialEvent {
  const lease = f.lease;
  const ttlMs = lease === null ? (f.ttlMs ?? null) : lease.expiresAt - lease.createdAt;
  return {
    type: 'credential',
    time: auditTime(),
    sessionId: f.requestId,
    engine: 'mysql',
    action: f.action,
    outcome: f.error === null ? 'completed' : FAULTS.has(f.error.kind) ? 'failed' : 'refused',
    credential: credentialOf(f),
    peer: f.peer === null ? null : { address: f.peer.address, port: f.peer.port },
    identity: f.identity === null ? null : auditIdentity(f.identity),
    decision: f.decision,
    rule: f.rule,
    ...(f.policyVersion == null ? {} : { policyVersion: f.policyVersion }),
    reason: f.reason,
    principal: lease?.principal ?? f.principal ?? null,
    leaseId: lease?.id ?? f.leaseId ?? null,
    account: lease?.username ?? f.account ?? null,
    role: lease?.role ?? f.role ?? null,
    database: lease === null ? (f.database ?? null) : lease.database,
    ttlSeconds: ttlMs === null ? null : Math.round(ttlMs / 1000),
    expiresAt: lease === null ? null : new Date(lease.expiresAt).toISOString(),
    error: f.error === null ? null : { code: f.error.code, message: f.error.message },
  };
}
