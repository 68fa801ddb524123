/**
 * The identity an audit event names, as `policy diff` tries it. Events come from a file
 * anyone may have edited, so every field is checked; an event without a usable identity
 * (a refused connection before identity, a credential event, an edited line) gives null.
 */
import { AUTH_METHODS } from '../schema.ts';
import type { SeenIdentity } from './identities.ts';

const METHODS: ReadonlySet<string> = new Set(AUTH_METHODS);
// The SPIFFE limit; anything longer was not written by meshgate.
const MAX_PRINCIPAL = 2048;

export function seenIdentityOf(event: Readonly<Record<string, unknown>>): SeenIdentity | null {
  const identity = event['identity'];
  if (typeof identity !== 'object' || identity === null || Array.isArray(identity)) return null;
  const { principal, authMethod, claims } = identity as Record<string, unknown>;
  if (typeof principal !== 'string' || principal === '' || principal.length > MAX_PRINCIPAL || typeof authMethod !== 'string' || !METHODS.has(authMethod)) return null;
  // Events do not record claims today; should they, a jwt caller is tried with its own.
  const withClaims = authMethod === 'jwt' && typeof claims === 'object' && claims !== null && !Array.isArray(claims);
  return withClaims ? { principal, authMethod, claims: claims as Record<string, unknown> } : { principal, authMethod };
}
