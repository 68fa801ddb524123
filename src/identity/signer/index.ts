/** The certificate-signing endpoint `meshgate agent` talks to, and what it is built from. */
export { startSigningEndpoint, SVID_ROUTE, MAX_REQUEST_BYTES, type SigningEndpoint, type SigningEndpointOptions } from './endpoint.ts';
export { signSvidForKey, type SignSvidForKeyOptions, type SignedSvid } from './sign.ts';
export { verifyCsr, generateKeyAndCsr, CSR_MAX_CHARS, type VerifiedCsr, type KeyAndCsr } from './csr.ts';
export {
  JoinTokenStore,
  JOIN_TOKENS_FILE,
  JOIN_TOKEN_PREFIX,
  DEFAULT_JOIN_TOKEN_TTL_SECONDS,
  isJoinTokenShaped,
  MAX_JOIN_TOKEN_TTL_SECONDS,
  type CreatedJoinToken,
} from './join-tokens.ts';
export { DEFAULT_ISSUANCES_PER_MINUTE } from './limits.ts';
