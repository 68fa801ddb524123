/** The identity module's public surface. */
export { parseSpiffeId, parseTrustDomain, principalOf, trustDomainId, SPIFFE_ID_MAX_BYTES, TRUST_DOMAIN_MAX_BYTES } from './spiffe.ts';
export { verifyTlsPeer } from './peer.ts';
export { parseSubjectAltNames, uriSansOf, type SubjectAltName } from './san.ts';
export { parseDuration, formatDuration } from './duration.ts';
export {
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
