/**
 * Turns a bearer token (a JWT in the MySQL password field, or `authorization: Bearer`) into
 * an Identity, or into a MeshgateError the caller can act on. The message never contains
 * the token; before the signature has verified only `iss`, `kid` and `alg` are quoted
 * (bounded, JSON-escaped), other claims only after.
 *
 * Order matters: cheap, key-free checks first (size, shape, issuer, algorithm allow-list),
 * so garbage and forgeries never cause a key fetch; then jose checks the signature and only
 * after it the claims (issuer, audience, exp/nbf with the skew); then the mapping.
 */
import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { asMeshgateError, isMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { principalOf } from '../spiffe.ts';
import type { Identity } from '../types.ts';
import { parseTokenVerifierConfig, type IssuerConfig, type TokenVerifierConfigInput } from './config.ts';
import { createKeySource, type KeySource } from './jwks.ts';
import { checkHeader, mapClaims } from './mapping.ts';

export interface TokenVerifierOptions {
  /** The clock for exp/nbf; tests freeze it. */
  readonly now?: () => Date;
}

export interface TokenVerifier {
  /** The configured issuers, in configuration order. */
  readonly issuers: readonly string[];
  /** Verifies a compact JWS; rejects only with MeshgateError. */
  verify(token: string): Promise<Identity>;
}

interface Issuer {
  readonly config: IssuerConfig;
  readonly keys: KeySource;
}

// Compact JWS: three base64url parts; the signature is empty only for `alg: none`.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function invalid(message: string, cause?: unknown): MeshgateError {
  return mgError('MG_TOKEN_INVALID', message, cause);
}

/** Quotes an unverified or claim value for a message, bounded. */
function show(value: unknown): string {
  if (value === undefined) return '(missing)';
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

function isoOf(seconds: unknown): string | null {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return null;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** SHA-256 of the token in node:crypto's fingerprint256 form, for audit correlation. */
function fingerprintOf(token: string): string {
  return createHash('sha256').update(token).digest('hex').toUpperCase().match(/../g)!.join(':');
}

function decodeUnverified(token: string, maxBytes: number): { header: JWTHeaderParameters; payload: JWTPayload } {
  const hint = "send the token itself (no 'Bearer ' prefix, quotes or line breaks)";
  if (token.length > maxBytes) {
    throw invalid(`the token is longer than ${maxBytes} bytes, the most meshgate accepts; request a token with fewer claims`);
  }
  if (COMPACT_JWE.test(token)) throw invalid('the token is encrypted (JWE); meshgate accepts signed JWTs only');
  if (!COMPACT_JWS.test(token)) throw invalid(`the token is not a JWT (three base64url parts separated by '.'); ${hint}`);
  try {
    return { header: decodeProtectedHeader(token) as JWTHeaderParameters, payload: decodeJwt(token) };
  } catch (error) {
    throw invalid(`the token's header or payload is not base64url-encoded JSON; ${hint}`, error);
  }
}

function translate(error: unknown, issuer: Issuer, header: JWTHeaderParameters, now: Date): MeshgateError {
  if (isMeshgateError(error)) return error;
  const { config, keys } = issuer;
  const skew = `${config.clockSkewSeconds} s clock skew allowed`;
  if (error instanceof errors.JWTExpired && error.claim === 'exp') {
    return mgError(
      'MG_TOKEN_EXPIRED',
      `the token expired at ${isoOf(error.payload.exp) ?? '?'} (now ${now.toISOString()}, ${skew}); get a fresh token from ${config.issuer}`,
    );
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' && error.reason === 'check_failed') {
      return mgError(
        'MG_TOKEN_EXPIRED',
        `the token is not valid until ${isoOf(error.payload.nbf) ?? '?'} (now ${now.toISOString()}, ${skew}); check the clocks of the issuer and of meshgate`,
      );
    }
    if (error.claim === 'aud') {
      const aud = error.payload.aud;
      const list = (Array.isArray(aud) ? aud : [aud]).slice(0, 5).map((a) => show(a)).join(', ');
      const got = error.reason === 'missing' ? 'has no audience' : `is for ${list}`;
      return mgError(
        'MG_TOKEN_AUDIENCE',
        `the token ${got}; meshgate accepts tokens from ${config.issuer} for ${config.audiences.map((a) => show(a)).join(', ')}: request the token with one of those audiences`,
      );
    }
    if (error.claim === 'exp' && error.reason === 'missing') {
      return invalid(`the token has no exp claim; meshgate accepts only tokens that expire (use a short-lived token from ${config.issuer})`);
    }
    return invalid(`the token's ${error.claim} claim is not acceptable (${error.reason}); get a new token from ${config.issuer}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return invalid(`the token's signature does not verify with ${config.issuer}'s key; it was altered or not signed by that issuer`);
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    const refresh = keys.cooldownMs === null ? '' : ` (meshgate refreshes the keys on an unknown kid at most every ${keys.cooldownMs} ms)`;
    return invalid(
      `no key of ${config.issuer} (${keys.where}) matches the token's kid ${show(header.kid ?? '(none)')} and alg ${show(header.alg)}${refresh}; it was signed with a key the issuer does not publish`,
    );
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid(`the token has no kid and ${config.issuer} publishes several keys for ${show(header.alg)}; the issuer must set kid`);
  }
  if (error instanceof errors.JOSEError) return invalid(`the token could not be verified (${error.code}); get a new token from ${config.issuer}`, error);
  return asMeshgateError(error);
}

function identityOf(issuer: IssuerConfig, token: string, payload: JWTPayload): Identity {
  const { id, claims } = mapClaims(issuer, payload);
  return Object.freeze({
    spiffeId: id.uri,
    trustDomain: id.trustDomain,
    namespace: id.namespace,
    serviceAccount: id.serviceAccount,
    principal: principalOf(id),
    authMethod: 'jwt',
    certificate: Object.freeze({
      serialNumber: typeof payload.jti === 'string' ? payload.jti.slice(0, 256) : '',
      notBefore: isoOf(payload.nbf) ?? isoOf(payload.iat) ?? '',
      notAfter: isoOf(payload.exp) ?? '',
      fingerprint256: fingerprintOf(token),
    }),
    claims,
  });
}

async function verifyWith(issuers: ReadonlyMap<string, Issuer>, maxBytes: number, token: string, now: Date): Promise<Identity> {
  const { header, payload } = decodeUnverified(token, maxBytes);
  if (typeof payload.iss !== 'string' || payload.iss === '') throw invalid('the token has no iss (issuer) claim');
  const issuer = issuers.get(payload.iss);
  if (issuer === undefined) {
    throw mgError(
      'MG_TOKEN_ISSUER_UNKNOWN',
      `the token's issuer ${show(payload.iss)} is not trusted; meshgate accepts tokens from ${[...issuers.keys()].map((i) => show(i)).join(', ')}`,
    );
  }
  const { config } = issuer;
  if (Buffer.byteLength(token, 'utf8') > config.maxTokenBytes) {
    throw invalid(`the token is longer than ${config.maxTokenBytes} bytes, the most meshgate accepts from ${config.issuer}; request a token with fewer claims`);
  }
  // Checked here as well as by jose, to say which algorithms would do.
  if (typeof header.alg !== 'string' || !config.algorithms.includes(header.alg)) {
    const what = header.alg === 'none' ? 'is unsigned (alg none)' : `is signed with ${show(header.alg)}`;
    throw invalid(`the token ${what}, which is not allowed for ${config.issuer} (allowed: ${config.algorithms.join(', ')})`);
  }
  const refused = checkHeader(config, header);
  if (refused !== null) throw refused;
  let verified: JWTPayload;
  try {
    ({ payload: verified } = await jwtVerify(token, issuer.keys.getKey, {
      issuer: config.issuer,
      audience: [...config.audiences],
      algorithms: [...config.algorithms],
      clockTolerance: config.clockSkewSeconds,
      currentDate: now,
      requiredClaims: ['exp'],
    }));
  } catch (error) {
    throw translate(error, issuer, header, now);
  }
  return identityOf(config, token, verified);
}

/**
 * Validates the configuration (MG_CONFIG_INVALID), reads JWKS and CA files, and returns a
 * verifier. Remote JWKS are fetched on first use, so an issuer that is down at startup
 * costs only its own tokens.
 */
export async function createTokenVerifier(config: TokenVerifierConfigInput, options: TokenVerifierOptions = {}): Promise<TokenVerifier> {
  const parsed = parseTokenVerifierConfig(config);
  const now = options.now ?? (() => new Date());
  const issuers = new Map<string, Issuer>();
  for (const entry of parsed.issuers) issuers.set(entry.issuer, { config: entry, keys: await createKeySource(entry.issuer, entry.jwks) });
  // Before the issuer is known, the largest limit bounds what is decoded at all.
  const maxBytes = Math.max(...parsed.issuers.map((i) => i.maxTokenBytes));
  return Object.freeze({
    issuers: Object.freeze([...issuers.keys()]),
    async verify(token: string): Promise<Identity> {
      if (typeof token !== 'string') throw new TypeError('TokenVerifier.verify expects the token as a string');
      try {
        return await verifyWith(issuers, maxBytes, token, now());
      } catch (error) {
        throw asMeshgateError(error);
      }
    },
  });
}
