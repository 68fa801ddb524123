/**
 * Configuration of token (JWT) authentication: which issuers meshgate trusts, for which
 * audiences, where their keys are, and how their claims become an Identity. One schema,
 * strict objects, defaults here and nowhere else; anything unsafe is refused at load so it
 * can never be a runtime decision (`alg: none`, HMAC algorithms, plain-HTTP key fetches).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isMeshgateError, mgError } from '../../errors/index.ts';
import { parseTrustDomain } from '../spiffe.ts';

/** Public-key JWS algorithms jose verifies. HS* is absent on purpose: see `algorithm`. */
export const SUPPORTED_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const;
export const DEFAULT_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'EdDSA'];

export const TOKEN_DEFAULTS = {
  clockSkewSeconds: 30,
  maxTokenBytes: 8192,
  jwksTimeoutMs: 2000,
  jwksCooldownMs: 30_000,
  /** jose's own default; keys older than this are refetched before use. */
  jwksCacheMaxAgeSeconds: 600,
} as const;

const algorithm = z.string().superRefine((alg, ctx) => {
  const problem =
    alg.toLowerCase() === 'none'
      ? "'none' means an unsigned token, which anyone can forge; it is never accepted"
      : /^HS/i.test(alg)
        ? `${alg} is an HMAC (shared-secret) algorithm; meshgate verifies only public-key signatures from a JWKS, and allowing HS* lets a public key be used as the secret`
        : (SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)
          ? null
          : `${JSON.stringify(alg)} is not a supported algorithm (use ${SUPPORTED_ALGORITHMS.join(', ')})`;
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Why a JWKS URL is refused, or null. Keys fetched over plain HTTP could be swapped in transit. */
function jwksUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not a URL`;
  }
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') {
    return isLoopback(url.hostname) ? null : 'plain http is allowed only for loopback addresses; use https (and jwks.caFile for a private CA)';
  }
  return `must be an https URL, not ${url.protocol}`;
}

const remoteJwks = z.strictObject({
  url: z.string().superRefine((url, ctx) => {
    const problem = jwksUrlProblem(url);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  }),
  /** PEM bundle that signs the JWKS endpoint's certificate (e.g. the cluster CA). */
  caFile: z.string().min(1).optional(),
  cacheMaxAgeSeconds: z.number().int().min(1).max(86_400).default(TOKEN_DEFAULTS.jwksCacheMaxAgeSeconds),
  timeoutMs: z.number().int().min(100).max(30_000).default(TOKEN_DEFAULTS.jwksTimeoutMs),
  /** Minimum time between refetches caused by unknown `kid`s, so forged kids cannot flood the issuer. */
  cooldownMs: z.number().int().min(100).max(3_600_000).default(TOKEN_DEFAULTS.jwksCooldownMs),
});

const fileJwks = z.strictObject({ file: z.string().min(1) });

const mapping = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('kubernetes') }),
  z.strictObject({ kind: z.literal('github-actions') }),
  z.strictObject({ kind: z.literal('jwt-svid') }),
  z.strictObject({
    kind: z.literal('oidc'),
    subjectClaim: z.enum(['sub', 'email']).default('sub'),
    groupsClaim: z.string().min(1).default('groups'),
  }),
]);

const issuer = z.strictObject({
  /** Compared exactly with the token's `iss` (no trailing-slash or case folding, as OIDC requires). */
  issuer: z.string().min(1).describe("the token's iss, exactly, e.g. https://kubernetes.default.svc.cluster.local"),
  audiences: z.array(z.string().min(1)).min(1).describe('the aud values meshgate accepts, e.g. [meshgate]'),
  jwks: z
    .union([remoteJwks, fileJwks], {
      error: 'give either { url, caFile?, timeoutMs?, cooldownMs?, cacheMaxAgeSeconds? } or { file }',
    })
    .describe("where the issuer's signing keys are: { url: https://… } or { file: jwks.json }"),
  algorithms: z.array(algorithm).min(1).default([...DEFAULT_ALGORITHMS]),
  clockSkewSeconds: z.number().int().min(0).max(300).default(TOKEN_DEFAULTS.clockSkewSeconds),
  maxTokenBytes: z.number().int().min(512).max(65_536).default(TOKEN_DEFAULTS.maxTokenBytes),
  mapping: mapping.describe('how claims become an identity: { kind: kubernetes }, github-actions, jwt-svid or oidc'),
  trustDomain: z
    .string()
    .superRefine((name, ctx) => {
      try {
        parseTrustDomain(name);
      } catch (error) {
        if (!isMeshgateError(error)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
      }
    })
    .describe("the trust domain of the identities this issuer's tokens map to, e.g. cluster.local"),
});

export const tokenVerifierConfigSchema = z
  .strictObject({ issuers: z.array(issuer).min(1).describe('the token issuers meshgate trusts, each { issuer, audiences, jwks, mapping, trustDomain }') })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    for (const [i, entry] of config.issuers.entries()) {
      // The issuer is chosen by `iss` before anything is verified, so it must be unambiguous.
      if (seen.has(entry.issuer)) {
        ctx.addIssue({ code: 'custom', path: ['issuers', i, 'issuer'], message: `${JSON.stringify(entry.issuer)} is configured twice` });
      }
      seen.add(entry.issuer);
      if ('caFile' in entry.jwks && entry.jwks.caFile !== undefined && !entry.jwks.url.startsWith('https:')) {
        ctx.addIssue({ code: 'custom', path: ['issuers', i, 'jwks', 'caFile'], message: 'caFile applies only to an https JWKS url' });
      }
    }
  });

export type TokenVerifierConfigInput = z.input<typeof tokenVerifierConfigSchema>;
export type TokenVerifierConfig = z.output<typeof tokenVerifierConfigSchema>;
export type IssuerConfig = TokenVerifierConfig['issuers'][number];
export type JwksConfig = IssuerConfig['jwks'];
export type RemoteJwksConfig = z.output<typeof remoteJwks>;
export type MappingConfig = IssuerConfig['mapping'];

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Validates token configuration and returns it frozen, with defaults filled in. Throws
 * MG_CONFIG_INVALID naming each bad field under `field` (e.g. `tokens.issuers.0.algorithms.1`).
 * Paths (jwks.file, jwks.caFile) are used as given; the config loader makes them absolute.
 */
export function parseTokenVerifierConfig(raw: unknown, field = 'tokens'): TokenVerifierConfig {
  const parsed = tokenVerifierConfigSchema.safeParse(raw);
  if (parsed.success) return deepFreeze(parsed.data);
  const issues = parsed.error.issues;
  const lines = issues.slice(0, 5).map((issue) => `${[field, ...issue.path.map(String)].join('.')}: ${issue.message}`);
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  throw mgError('MG_CONFIG_INVALID', `${lines.join('; ')}${more}`);
}
