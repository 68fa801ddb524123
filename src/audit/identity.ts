import type { Identity } from '../identity/index.ts';
import type { AuditIdentity } from './types.ts';

/** The identity as events record it: who and how, never the credential itself. */
export function auditIdentity(identity: Identity): AuditIdentity {
  return {
    spiffeId: identity.spiffeId,
    principal: identity.principal,
    trustDomain: identity.trustDomain,
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccount,
    authMethod: identity.authMethod,
  };
}
