/**
 * Identity, the surface every other folder uses: SPIFFE IDs, peer verification, resolve(Peer)
 * → Identity for every engine, TLS material that reloads, tokens (jwt/), the built-in CA, its
 * signing endpoint (signer/) and the agent that keeps a workload's SVID fresh (agent/).
 */
export { parseSpiffeId, parseTrustDomain, principalOf, trustDomainId, SPIFFE_ID_MAX_BYTES, TRUST_DOMAIN_MAX_BYTES } from './spiffe.ts';
export { verifyTlsPeer } from './peer.ts';
export { parseSubjectAltNames, uriSansOf, type SubjectAltName } from './san.ts';
export { parseDuration, formatDuration } from './duration.ts';
export {
  describeLifetime,
  initCa,
  issueSvid,
  issueServerCert,
  loadCa,
  CA_FILES,
  DEFAULT_CA_TTL_DAYS,
  type InitCaOptions,
  type InitCaResult,
  type IssueSvidOptions,
  type IssueServerCertOptions,
  type IssuedCertificate,
  type CaMetadata,
  type LoadedCa,
} from './ca.ts';
export type { Identity, SpiffeId, TlsPeerFacts, PeerVerificationOptions } from './types.ts';
export { createIdentityResolver, type IdentityResolver, type IdentityResolverOptions, type Peer, type XfccNote } from './resolve.ts';
export { tlsFactsOf } from './tls-verdict.ts';
export { watchTlsMaterial, type TlsMaterial } from './tls-material.ts';
export { onelineName } from './x509-names.ts';
export { pruneCa, rotateCa, type RootSummary } from './rotation.ts';
export { createTokenVerifier, JWKS_FETCH_CHANNEL, tokenVerifierConfigSchema, type TokenVerifier } from './jwt/index.ts';
export { pemCertificates } from './ca-records.ts';
export { DEFAULT_JOIN_TOKEN_TTL_SECONDS, isJoinTokenShaped, JoinTokenStore, startSigningEndpoint, type SigningEndpoint } from './signer/index.ts';
export { AGENT_EXIT, runAgent, SVID_FILE_NAME, type AgentCredential, type AgentDeps, type RetryPolicy } from './agent/index.ts';
