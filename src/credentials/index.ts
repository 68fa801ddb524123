/**
 * Upstream credentials: leases on MariaDB dynamic users, the proxy's own rotated admin
 * credential, and tokens for the Google upstream (Firestore).
 */
export { emulatorAuth, googleUpstreamAuth, DATASTORE_SCOPE, type GoogleAuthOptions, type UpstreamAuth } from './google.ts';
