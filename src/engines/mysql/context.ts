import type { SecureContext } from 'node:tls';
import type { AuditRecorder } from '../../audit/index.ts';
import type { Identity, IdentityResolver } from '../../identity/index.ts';
import type { Logger } from '../../log.ts';
import type { PolicySource } from '../../policy/index.ts';
import type { Throttle, UpstreamBudget } from '../../throttle/index.ts';
import type { ServerProfile } from './profile.ts';
import type { QueryCacheMode } from './server-settings.ts';
import type { UpstreamTarget } from './upstream.ts';
import type { SessionLogin, UpstreamUse } from './upstream-source.ts';

export interface RoleAccount {
  readonly user: string;
  readonly password: string;
}

/**
 * Everything the MySQL engine needs from the rest of meshgate, passed in so the engine
 * knows nothing of config files, policy directories or audit formats: the protocol
 * settings its sessions speak with, and the stages (identity, policy, throttle, upstream,
 * audit) its handlers run. Getters where the answer can change while sessions run:
 * reloaded policy or TLS files.
 */
export interface MysqlEngineContext {
  readonly profile: ServerProfile;
  readonly upstream: UpstreamTarget;
  readonly tlsRequired: boolean;
  /** `starttls`: MySQL's SSLRequest after the greeting; `first-byte`: TLS from the first byte (Istio). */
  readonly tlsMode: 'starttls' | 'first-byte';
  secureContext(): SecureContext;
  readonly identity: IdentityResolver;
  readonly policy: PolicySource;
  readonly throttle: Throttle;
  /** throttle.upstream: a session holds one of these connections while it holds its upstream one. */
  readonly upstreamBudget?: UpstreamBudget | null;
  /** An upstream connection for this identity in this role: pooled, or a fresh login. `sessionId` names the session in alerts. */
  openUpstream(identity: Identity, role: string, login: SessionLogin, sessionId: string): Promise<UpstreamUse>;
  readonly audit: AuditRecorder;
  readonly log: Logger;
  readonly maxClientMessageBytes: number;
  /** listener.timeouts: accept to finished login; an ending session's wait for MariaDB's answers. */
  readonly handshakeTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** Put a sqlcommenter comment naming the caller in front of statements sent upstream. */
  readonly tagStatements: boolean;
  /** audit.statementBytes: how much of a statement's text its audit event keeps (64 KiB when not given). */
  readonly auditStatementBytes?: number;
  /** audit.parameterBytes: how much of a parameter's value an execute's event keeps. */
  readonly auditParameterBytes: number;
  /** MariaDB's query cache as last read: statements it could answer go without a trace id in their tag. */
  queryCacheMode(): QueryCacheMode;
  /** The character set a collation id belongs to, as MariaDB says; null if unknown. */
  charsetOf(collation: number): string | null;
}
