/** Token (JWT) authentication: configuration, verification and claim mapping. */
export { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from './verifier.ts';
export {
  parseTokenVerifierConfig,
  tokenVerifierConfigSchema,
  DEFAULT_ALGORITHMS,
  SUPPORTED_ALGORITHMS,
  TOKEN_DEFAULTS,
  type TokenVerifierConfig,
  type TokenVerifierConfigInput,
  type IssuerConfig,
  type JwksConfig,
  type RemoteJwksConfig,
  type MappingConfig,
} from './config.ts';
export { escapeSpiffeSegment } from './mapping.ts';
export { JWKS_FETCH_CHANNEL, JWKS_MAX_BYTES } from './jwks.ts';
