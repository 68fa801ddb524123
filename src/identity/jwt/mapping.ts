/**
 * Verified claims → SPIFFE ID + the claims policy may match. Runs only after the signature,
 * issuer, audience and times have been checked, so every value here is the issuer's word.
 *
 * Every ID is built to the SPIFFE spec and re-parsed with parseSpiffeId, because policy
 * matches principals as strings: a value outside the spec's path characters is escaped (see
 * escapeSpiffeSegment), never passed through or percent-encoded (the spec forbids '%').
 */
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import { isMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { parseSpiffeId } from '../spiffe.ts';
import type { SpiffeId } from '../types.ts';
import type { IssuerConfig, MappingConfig } from './config.ts';

export interface MappedIdentity {
  readonly id: SpiffeId;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Quotes a claim value for a message, bounded (claims are the issuer's, but can be long). */
function show(value: unknown): string {
  if (value === undefined) return '(missing)';
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

function claimsError(issuer: IssuerConfig, problem: string): MeshgateError {
  return mgError(
    'MG_TOKEN_CLAIMS_INVALID',
    `the token from ${issuer.issuer} verified, but ${problem}; meshgate maps this issuer's tokens as '${issuer.mapping.kind}' (check the issuer's mapping, or present the right kind of token)`,
  );
}

const SAFE_CHAR = /[A-Za-z0-9.-]/;

/**
 * Makes any non-empty string one SPIFFE path segment, injectively: A-Z a-z 0-9 '.' '-' stay
 * as they are, every other byte of the UTF-8 form (including '_' itself, which is what makes
 * it reversible) becomes `_` + two upper-case hex digits. `alice@example.com` →
 * `alice_40example.com`; a whole segment '.' or '..' becomes `_2E` / `_2E_2E`.
 */
export function escapeSpiffeSegment(value: string): string {
  if (value === '.' || value === '..') return value.replaceAll('.', '_2E');
  let out = '';
  for (const ch of value) {
    if (SAFE_CHAR.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function buildId(issuer: IssuerConfig, segments: readonly string[]): SpiffeId {
  const uri = `spiffe://${issuer.trustDomain}/${segments.join('/')}`;
  try {
    return parseSpiffeId(uri);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    throw claimsError(issuer, `its claims do not make a valid SPIFFE ID (${error.message})`);
  }
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Copies the named string claims that are present, so policy sees only well-typed values. */
function pick(payload: JWTPayload, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const value = stringClaim(payload, name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

// Kubernetes names: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain.
const K8S_NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const K8S_SERVICE_ACCOUNT = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
const K8S_SUB = /^system:serviceaccount:([^:]+):([^:]+)$/;

function kubernetes(issuer: IssuerConfig, payload: JWTPayload): MappedIdentity {
  const nested = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown }; pod?: { name?: unknown } } | undefined;
  const fromSub = typeof payload.sub === 'string' ? K8S_SUB.exec(payload.sub) : null;
  let namespace: unknown;
  let serviceAccount: unknown;
  if (typeof nested === 'object' && nested !== null) {
    namespace = nested.namespace;
    serviceAccount = typeof nested.serviceaccount === 'object' && nested.serviceaccount !== null ? nested.serviceaccount.name : undefined;
    // Both come from the API server; if they disagree the token is not what it claims to be.
    if (fromSub !== null && (fromSub[1] !== namespace || fromSub[2] !== serviceAccount)) {
      throw claimsError(issuer, `its sub ${show(payload.sub)} disagrees with its kubernetes.io namespace/serviceaccount claims`);
    }
  } else if (fromSub !== null) {
    namespace = fromSub[1];
    serviceAccount = fromSub[2];
  }
  if (typeof namespace !== 'string' || typeof serviceAccount !== 'string') {
    throw claimsError(
      issuer,
      'it has no kubernetes.io.namespace and kubernetes.io.serviceaccount.name claims (nor a sub of the form system:serviceaccount:<namespace>:<name>), so it is not a service-account token',
    );
  }
  if (!K8S_NAMESPACE.test(namespace)) throw claimsError(issuer, `its namespace ${show(namespace)} is not a Kubernetes namespace name`);
  if (!K8S_SERVICE_ACCOUNT.test(serviceAccount)) throw claimsError(issuer, `its service account ${show(serviceAccount)} is not a Kubernetes name`);
  const claims: Record<string, unknown> = pick(payload, ['iss', 'sub']);
  const podName = typeof nested === 'object' && nested !== null && typeof nested.pod === 'object' && nested.pod !== null ? nested.pod.name : undefined;
  if (typeof podName === 'string') claims.pod = podName;
  // The same ID an Istio SVID carries, so one policy covers both ways of proving it.
  return { id: buildId(issuer, ['ns', namespace, 'sa', serviceAccount]), claims };
}

const GITHUB_REPOSITORY = /^([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+)$/;
const GITHUB_CLAIMS = [
  'iss', 'sub', 'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'ref', 'ref_type', 'environment',
  'actor', 'actor_id', 'workflow', 'workflow_ref', 'job_workflow_ref', 'sha', 'event_name', 'run_id',
] as const;

/**
 * `github/<owner>/<repo>/env/<environment>` when the job runs in an environment, else
 * `github/<owner>/<repo>/ref/<ref without "refs/">` (e.g. `ref/heads/main`, `ref/tags/v1`).
 * The `env`/`ref` marker keeps a branch named "production" from getting the identity of
 * the (protected, reviewed) environment "production".
 */
function githubActions(issuer: IssuerConfig, payload: JWTPayload): MappedIdentity {
  const repository = stringClaim(payload, 'repository');
  const match = repository === undefined ? null : GITHUB_REPOSITORY.exec(repository);
  if (match === null) throw claimsError(issuer, `its repository claim ${show(payload.repository)} is not <owner>/<repo>`);
  const [, owner = '', repo = ''] = match;
  const environment = stringClaim(payload, 'environment');
  const ref = stringClaim(payload, 'ref');
  let tail: string[];
  if (environment !== undefined) tail = ['env', escapeSpiffeSegment(environment)];
  else if (ref !== undefined && ref.startsWith('refs/') && !ref.split('/').includes('')) {
    tail = ['ref', ...ref.slice('refs/'.length).split('/').map(escapeSpiffeSegment)];
  } else throw claimsError(issuer, `it has neither an environment claim nor a ref of the form refs/… (ref ${show(payload.ref)})`);
  return { id: buildId(issuer, ['github', escapeSpiffeSegment(owner), escapeSpiffeSegment(repo), ...tail]), claims: pick(payload, GITHUB_CLAIMS) };
}

function jwtSvid(issuer: IssuerConfig, payload: JWTPayload): MappedIdentity {
  let id: SpiffeId;
  try {
    id = parseSpiffeId(typeof payload.sub === 'string' ? payload.sub : '');
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    throw claimsError(issuer, `its sub must be the workload's SPIFFE ID: ${error.message}`);
  }
  if (id.trustDomain !== issuer.trustDomain) {
    throw mgError(
      'MG_TRUST_DOMAIN_UNTRUSTED',
      `the JWT-SVID for ${id.uri} comes from ${issuer.issuer}, which may speak only for the trust domain ${JSON.stringify(issuer.trustDomain)}`,
    );
  }
  if (id.path === '') throw claimsError(issuer, `its sub ${show(id.uri)} names the trust domain itself, not a workload`);
  return { id, claims: pick(payload, ['iss', 'sub']) };
}

function oidc(issuer: IssuerConfig, mapping: Extract<MappingConfig, { kind: 'oidc' }>, payload: JWTPayload): MappedIdentity {
  const subject = stringClaim(payload, mapping.subjectClaim);
  if (subject === undefined) throw claimsError(issuer, `it has no ${mapping.subjectClaim} claim to name the user`);
  // An unverified address could be anyone's; IdPs that omit the flag are taken at their word.
  if (mapping.subjectClaim === 'email' && payload.email_verified !== undefined && payload.email_verified !== true) {
    throw claimsError(issuer, `its email ${show(subject)} is not verified by the issuer (email_verified is ${show(payload.email_verified)})`);
  }
  const claims = pick(payload, ['iss', 'sub', 'email', 'name']);
  if (typeof payload.email_verified === 'boolean') claims.email_verified = payload.email_verified;
  const groups = payload[mapping.groupsClaim];
  if (groups !== undefined) {
    if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) {
      throw claimsError(issuer, `its ${mapping.groupsClaim} claim is not a list of strings`);
    }
    claims.groups = Object.freeze([...groups]);
  }
  return { id: buildId(issuer, ['user', escapeSpiffeSegment(subject)]), claims };
}

/** Refuses token types the mapping does not expect, before any key is fetched. */
export function checkHeader(issuer: IssuerConfig, header: JWTHeaderParameters): MeshgateError | null {
  // JWT-SVID spec §2: typ, when present, is JWT or JOSE.
  if (issuer.mapping.kind === 'jwt-svid' && header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') {
    return mgError('MG_TOKEN_INVALID', `the token's typ header is ${show(header.typ)}; a JWT-SVID has typ JWT or JOSE (or none)`);
  }
  return null;
}

export function mapClaims(issuer: IssuerConfig, payload: JWTPayload): MappedIdentity {
  const mapping = issuer.mapping;
  let mapped: MappedIdentity;
  switch (mapping.kind) {
    case 'kubernetes':
      mapped = kubernetes(issuer, payload);
      break;
    case 'github-actions':
      mapped = githubActions(issuer, payload);
      break;
    case 'jwt-svid':
      mapped = jwtSvid(issuer, payload);
      break;
    case 'oidc':
      mapped = oidc(issuer, mapping, payload);
      break;
  }
  return { id: mapped.id, claims: Object.freeze(mapped.claims) };
}
