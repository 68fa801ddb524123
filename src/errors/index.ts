/**
 * The registry of stable meshgate error codes. Every error a user can see carries one of
 * these codes, a kind (how each engine renders it) and a message that says what to do.
 * Codes are never reused or renamed: operators grep logs and write alerts on them.
 */

export const ErrorKind = {
  unauthenticated: 'unauthenticated',
  accessDenied: 'access_denied',
  badRequest: 'bad_request',
  limitExceeded: 'limit_exceeded',
  unavailable: 'unavailable',
  config: 'config',
  internal: 'internal',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

interface CodeSpec {
  readonly kind: ErrorKind;
  readonly summary: string;
}

/** Each code's kind and a one-line summary (documented in docs/errors.md by test). */
export const ERROR_CODES = {
  MG_USAGE: { kind: 'bad_request', summary: 'a command-line invocation is incomplete or wrong' },
  MG_CONFIG_INVALID: { kind: 'config', summary: 'the configuration file or a flag is invalid' },
  MG_POLICY_INVALID: { kind: 'config', summary: 'a policy document does not validate or compile' },
  MG_POLICY_TEST_INVALID: { kind: 'config', summary: 'a policy test file does not validate, or no test case was given' },
  MG_POLICY_INIT_EXISTS: { kind: 'config', summary: 'policy init would overwrite files that exist' },
  MG_POLICY_GIT_UNAVAILABLE: { kind: 'unavailable', summary: 'meshgate could not fetch its policy from git at start and had no earlier commit to start from' },
  MG_CA_MISSING: { kind: 'config', summary: 'no CA exists where one was expected' },
  MG_CA_EXISTS: { kind: 'config', summary: 'a CA already exists where a new one was to be created' },
  MG_CA_BUSY: { kind: 'unavailable', summary: 'another meshgate process holds the CA lock for longer than meshgate waits' },
  MG_TLS_MATERIAL_INVALID: { kind: 'config', summary: 'a TLS certificate, key or trust bundle file cannot be loaded, or the key does not match the certificate' },
  MG_TLS_REQUIRED: { kind: 'unauthenticated', summary: 'the client connected without TLS where TLS is required' },
  MG_TLS_HANDSHAKE_FAILED: { kind: 'unauthenticated', summary: 'the TLS handshake failed: a TLS version or cipher meshgate does not accept, bytes that are not TLS, or the client gave up on meshgate\'s certificate' },
  MG_CLIENT_TIMEOUT: { kind: 'bad_request', summary: 'the client did not finish its handshake, or a call its request, within the configured time' },
  MG_CLIENT_CERT_MISSING: { kind: 'unauthenticated', summary: 'the client presented no certificate' },
  MG_CLIENT_CERT_EXPIRED: { kind: 'unauthenticated', summary: 'the client certificate has expired' },
  MG_CLIENT_CERT_NOT_YET_VALID: { kind: 'unauthenticated', summary: 'the client certificate is not valid yet' },
  MG_CLIENT_CERT_UNTRUSTED: { kind: 'unauthenticated', summary: 'the client certificate does not chain to a trusted root' },
  MG_SPIFFE_ID_INVALID: { kind: 'unauthenticated', summary: 'the certificate does not carry exactly one valid SPIFFE ID' },
  MG_TRUST_DOMAIN_UNTRUSTED: { kind: 'unauthenticated', summary: 'the SPIFFE ID belongs to a trust domain meshgate does not trust' },
  MG_XFCC_MALFORMED: { kind: 'unauthenticated', summary: 'the x-forwarded-client-cert header from a trusted proxy cannot be parsed' },
  MG_TOKEN_INVALID: { kind: 'unauthenticated', summary: 'the token is malformed, oversized, badly signed or uses an algorithm that is not allowed' },
  MG_TOKEN_EXPIRED: { kind: 'unauthenticated', summary: 'the token has expired or is not valid yet' },
  MG_TOKEN_AUDIENCE: { kind: 'unauthenticated', summary: 'the token was issued for a different audience' },
  MG_TOKEN_ISSUER_UNKNOWN: { kind: 'unauthenticated', summary: 'the token comes from an issuer meshgate is not configured to trust' },
  MG_TOKEN_CLAIMS_INVALID: { kind: 'unauthenticated', summary: 'the token verified but its claims do not map to an identity' },
  MG_JWKS_UNAVAILABLE: { kind: 'unavailable', summary: "the issuer's JWKS (signing keys) could not be fetched in time" },
  MG_POLICY_DENIED: { kind: 'access_denied', summary: 'policy denies this identity the requested access' },
  MG_COMMAND_FORBIDDEN: { kind: 'access_denied', summary: 'the protocol command is not allowed through meshgate' },
  MG_TAG_IMITATED: { kind: 'access_denied', summary: "the statement carries the keys of meshgate's statement tag (meshgate_identity, meshgate_role), by which MariaDB's processlist and logs name the caller" },
  MG_ACCOUNT_CHANGE_REFUSED: { kind: 'access_denied', summary: 'the statement would change a MariaDB account or its privileges (SET PASSWORD, ALTER/CREATE/DROP/RENAME USER, GRANT, REVOKE, roles), which are managed by meshgate and its operator, never through meshgate' },
  MG_LOCAL_INFILE_DENIED: { kind: 'access_denied', summary: 'LOAD DATA LOCAL INFILE is not allowed for this identity' },
  MG_PACKET_MALFORMED: { kind: 'bad_request', summary: 'the client sent bytes that are not a valid protocol message' },
  MG_PACKET_TOO_LARGE: { kind: 'limit_exceeded', summary: 'the client sent a message larger than the configured limit' },
  MG_UPSTREAM_UNAVAILABLE: { kind: 'unavailable', summary: 'the upstream database could not be reached' },
  MG_UPSTREAM_AUTH_FAILED: { kind: 'unavailable', summary: 'meshgate could not log in to the upstream database' },
  MG_UPSTREAM_REFUSED: { kind: 'access_denied', summary: "the upstream database refused what the client asked for at login (an unknown database, one the role may not use); MySQL clients see MariaDB's own error" },
  MG_UPSTREAM_PROTOCOL: { kind: 'unavailable', summary: 'the upstream database answered in a way meshgate cannot relay' },
  MG_AUDIT_UNAVAILABLE: { kind: 'unavailable', summary: 'the audit sink cannot record events' },
  MG_AUDIT_NOT_FOUND: { kind: 'bad_request', summary: 'no audit log where a command was told to read one' },
  MG_AUDIT_EXPORT_STOPPED: { kind: 'unavailable', summary: 'the audit export to PostgreSQL cannot go on from where it stopped without an operator (a file it needs is gone, a line fails its hash, the table holds another log under this replica id)' },
  MG_OUTCOME_UNKNOWN: { kind: 'unavailable', summary: 'an operation was sent upstream but its answer was never seen; it may or may not have taken effect' },
  MG_CSR_INVALID: { kind: 'bad_request', summary: 'a certificate signing request is not a PKCS#10 CSR, its signature does not verify, or its key is not ECDSA P-256' },
  MG_SIGNER_REQUEST_INVALID: { kind: 'bad_request', summary: 'a request to the signing endpoint has the wrong method, path or body' },
  MG_SIGNER_RATE_LIMITED: { kind: 'limit_exceeded', summary: 'an identity asked the signing endpoint for more certificates per minute than it allows' },
  MG_SIGNER_UNAVAILABLE: { kind: 'unavailable', summary: 'meshgate agent could not get an answer from the signing endpoint within its retry budget' },
  MG_SIGNER_UNTRUSTED: { kind: 'config', summary: "the signing endpoint's TLS certificate does not verify against the agent's --ca-bundle" },
  MG_SIGNER_RESPONSE_INVALID: { kind: 'unavailable', summary: 'the signing endpoint answered with something other than a certificate for the key the agent sent' },
  MG_JOIN_TOKEN_INVALID: { kind: 'unauthenticated', summary: 'the join token is malformed, unknown to the CA, or already used' },
  MG_JOIN_TOKEN_EXPIRED: { kind: 'unauthenticated', summary: 'the join token has expired' },
  MG_STORE_UNAVAILABLE: { kind: 'unavailable', summary: 'the state store (embedded file or PostgreSQL) cannot be read or written' },
  MG_STORE_CONFLICT: { kind: 'internal', summary: 'a lease id already exists in the state store' },
  MG_LEASE_ROLE_UNKNOWN: { kind: 'config', summary: 'policy maps the identity to a MariaDB role that does not exist in MariaDB' },
  MG_LEASE_NOT_FOUND: { kind: 'bad_request', summary: 'no lease has that id (it may have been pruned after revocation)' },
  MG_LEASE_REVOKED: { kind: 'access_denied', summary: 'the lease was revoked or has expired' },
  MG_LEASE_TTL_TOO_LONG: { kind: 'bad_request', summary: 'the requested lease TTL is above the configured maximum' },
  MG_DIRECT_CREDS_LIMIT: { kind: 'limit_exceeded', summary: 'an identity holds as many live direct credentials as allowed, or asked for them more often than allowed' },
  MG_THROTTLED: { kind: 'limit_exceeded', summary: "a session, statement or call was refused at once by its service class's rate, concurrency or session limit (or the class's wait queue was full)" },
  MG_THROTTLE_TIMEOUT: { kind: 'limit_exceeded', summary: 'a session, statement or call waited in its service class queue for the configured time without being admitted' },
  MG_UPSTREAM_BUSY: { kind: 'limit_exceeded', summary: "the upstream connection budget (per server or per role) has no connection this service class may take" },
  MG_SHUTTING_DOWN: { kind: 'unavailable', summary: 'this meshgate replica is shutting down and ended the session or call after its grace period; reconnect and another replica serves it' },
  MG_ADMIN_UNAUTHORIZED: { kind: 'access_denied', summary: 'the admin API caller is not one of the configured admin principals' },
  MG_TRACING_OFF: { kind: 'bad_request', summary: 'spans were asked of a meshgate that has no tracing section' },
  MG_METRICS_OFF: { kind: 'bad_request', summary: 'metrics were asked of a meshgate that has no metrics section' },
  MG_INTERNAL: { kind: 'internal', summary: 'a bug in meshgate' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MeshgateError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshgateError';
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
  }

  /** `[MG_X] message`, the form users see in every engine. */
  override toString(): string {
    return `[${this.code}] ${this.message}`;
  }
}

/** The factory every module uses, so a code and its kind can never disagree. */
export function mgError(code: ErrorCode, message: string, cause?: unknown): MeshgateError {
  return new MeshgateError(code, message, cause === undefined ? undefined : { cause });
}

export function isMeshgateError(value: unknown): value is MeshgateError {
  return value instanceof MeshgateError;
}

/** Wraps anything thrown into a MeshgateError without leaking its text to clients. */
export function asMeshgateError(value: unknown): MeshgateError {
  if (isMeshgateError(value)) return value;
  return mgError('MG_INTERNAL', 'meshgate hit an unexpected error; the server log has the details', value);
}
