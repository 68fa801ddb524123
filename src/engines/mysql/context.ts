import type { SecureContext } from 'node:tls';
import type { Logger } from '../../log.ts';
import type { AuditSink } from '../../audit/types.ts';
import type { Identity, TlsPeerFacts } from '../../identity/types.ts';
import type { CompiledPolicy } from '../../policy/types.ts';
import type { ServerProfile } from './profile.ts';
import type { UpstreamTarget } from './upstream.ts';
import type { SessionLogin, UpstreamUse } from './upstream-source.ts';

export interface RoleAccount {
  readonly user: string;
  readonly password: string;
}

/**
 * Everything a MySQL session needs from the rest of meshgate, passed in so the engine
 * knows nothing of config files, policy directories or audit formats. Getters (not
 * values) where the answer can change while sessions run: reloaded policy or TLS files.
 */
export interface MysqlEngineContext {
  readonly profile: ServerProfile;
  readonly upstream: UpstreamTarget;
  readonly tlsRequired: boolean;
  /** `starttls`: MySQL's SSLRequest after the greeting; `first-byte`: TLS from the first byte (Istio). */
  readonly tlsMode: 'starttls' | 'first-byte';
  secureContext(): SecureContext;
  verifyPeer(facts: TlsPeerFacts): Identity;
  /** Verifies a token sent as the MySQL password; absent when no token issuer is configured. */
  readonly verifyToken?: (token: string) => Promise<Identity>;
  policy(): CompiledPolicy;
  /** An upstream connection for this identity in this role: pooled, or a fresh login. */
  openUpstream(identity: Identity, role: string, login: SessionLogin): Promise<UpstreamUse>;
  readonly audit: AuditSink;
  readonly log: Logger;
  readonly maxClientMessageBytes: number;
  /** Append a sqlcommenter comment naming the caller to statements sent upstream. */
  readonly tagStatements: boolean;
}
