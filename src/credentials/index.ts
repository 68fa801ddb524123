/**
 * Upstream credentials: leases on MariaDB dynamic users (created, granted, renewed, revoked,
 * reaped), the proxy's own rotated admin credential, and tokens for the Google upstream
 * (Firestore).
 */
export { openCredentialRuntime, openStateStore, type CredentialReports, type CredentialRuntime } from './runtime.ts';
export type { IssuedCredential, LeaseLog, LeaseManager, LeaseOperation, LeaseOperationCounts, RevokeSelector } from './leases.ts';
export type { RefusalVerdict } from './lease-refusal.ts';
export { MANAGED_USER_PREFIX } from './account-names.ts';
export { PENDING_SUFFIX } from './admin-secret.ts';
export { emulatorAuth, googleUpstreamAuth, TOKEN_FETCH_CHANNEL, type GoogleAuthOptions, type UpstreamAuth } from './google.ts';
export { sharedMariadbCredentials, type MariadbCredentials } from './shared.ts';
