/**
 * Building the subjects `policy diff` tries: keys that say when two are the same caller,
 * values for glob patterns, and callers in the `td/ns/N/sa/S` layout completed from what
 * principal patterns spell out. Every choice here is made from what the policies name, in
 * code-unit order, so the same two policies give the same callers in either order.
 */
import { globMatches, type GlobSet } from '../glob.ts';
import { subjectFromPrincipal } from '../subject.ts';
import type { Subject } from '../types.ts';

/** Ids that stand for "some id no rule names"; segment-safe, so they parse as SPIFFE IDs. */
export const PLACEHOLDER_SA = 'any-sa';
export const OTHER = 'other';
export const FALLBACK_TRUST_DOMAIN = 'cluster.local';
export const AUTH_METHOD_ORDER = ['mtls', 'jwt', 'xfcc'] as const;

export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** JSON with sorted keys, so equal claims give equal keys. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value).sort(byCodeUnit).map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function credentialKey(subject: Subject): string {
  return `${subject.authMethod ?? ''}\0${subject.claims === undefined ? '' : stableJson(subject.claims)}`;
}

export function withoutClaims(subject: Subject): Subject {
  const { claims: _claims, ...rest } = subject;
  return rest;
}

export function identityKey(subject: Subject): string {
  return `${subject.principal}\0${subject.authMethod ?? ''}\0${subject.claims === undefined ? '' : stableJson(subject.claims)}`;
}

/** One value per entry of a glob set: the exact ids, and a value for each prefix or suffix. */
export function globWitnesses(set: GlobSet, anyValue: string): string[] {
  return [...set.exact, ...set.prefixes.map((p) => `${p}x`), ...set.suffixes.map((s) => `x${s}`), ...(set.any ? [anyValue] : [])];
}

/** The first of `other`, `other-2`, ... that no set matches (the last tried when `*` matches all). */
export function outsideAll(sets: readonly GlobSet[], base = OTHER): string {
  let candidate = base;
  for (let n = 2; n < 100 && sets.some((set) => globMatches(set, candidate)); n += 1) candidate = `${base}-${n}`;
  return candidate;
}

/** A subject from a principal; one outside the SPIFFE grammar (an edited log) keeps no namespace. */
export function subjectOf(principal: string, authMethod: string, claims?: Readonly<Record<string, unknown>>): Subject {
  let base: Subject;
  try {
    base = subjectFromPrincipal(principal);
  } catch {
    const trustDomain = principal.split('/')[0] ?? '';
    base = { spiffeId: `spiffe://${principal}`, trustDomain, namespace: null, serviceAccount: null, principal };
  }
  return Object.freeze({ ...base, authMethod, ...(claims === undefined ? {} : { claims }) });
}

export function istio(trustDomain: string, namespace: string, serviceAccount: string, authMethod: string, claims?: Record<string, unknown>): Subject {
  const principal = `${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  return Object.freeze({
    spiffeId: `spiffe://${principal}`,
    trustDomain,
    namespace,
    serviceAccount,
    principal,
    authMethod,
    ...(claims === undefined ? {} : { claims }),
  });
}

export function describeCaller(subject: Subject): string {
  const parts: string[] = [];
  if (subject.authMethod !== undefined && subject.authMethod !== 'mtls') parts.push(`via ${subject.authMethod}`);
  if (subject.claims !== undefined && Object.keys(subject.claims).length > 0) {
    parts.push(`claims ${Object.keys(subject.claims).sort(byCodeUnit).map((k) => `${k}=${stableJson(subject.claims![k])}`).join(' ')}`);
  }
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

// Enough to combine without the product growing past a few hundred callers per source.
const MAX_PARTS = 6;

function unique(values: readonly string[]): string[] {
  return [...new Set(values)].slice(0, MAX_PARTS);
}

export function layoutCandidates(trustDomains: readonly string[], namespaces: readonly string[], accounts: readonly string[], method: string, claims?: Record<string, unknown>): Subject[] {
  const out: Subject[] = [];
  for (const td of unique(trustDomains)) for (const ns of unique(namespaces)) for (const sa of unique(accounts)) out.push(istio(td, ns, sa, method, claims));
  return out;
}

/**
 * The trust domains, namespaces and service accounts principal patterns spell out in the
 * `td/ns/N/sa/S` layout, a cut segment completed with `x`: prefix `td/ns/sho` gives ns
 * `shox`, suffix `ers` gives sa `xers`, suffix `/sa/admin` sa `admin`.
 */
export function principalParts(set: GlobSet | null): { trustDomains: string[]; namespaces: string[]; serviceAccounts: string[] } {
  const parts = { trustDomains: [] as string[], namespaces: [] as string[], serviceAccounts: [] as string[] };
  if (set === null) return parts;
  const take = (segments: readonly string[], at: number): void => {
    // `at`: where the layout's first segment (the trust domain) sits in `segments`.
    const get = (i: number) => (i - at >= 0 && i - at < segments.length ? segments[i - at] : undefined);
    const td = get(0);
    const ns = get(1) === 'ns' || get(1) === undefined ? get(2) : undefined;
    const sa = get(3) === 'sa' || get(3) === undefined ? get(4) : undefined;
    if (td !== undefined && td !== '') parts.trustDomains.push(td);
    if (ns !== undefined && ns !== '') parts.namespaces.push(ns);
    if (sa !== undefined && sa !== '') parts.serviceAccounts.push(sa);
  };
  for (const prefix of set.prefixes) {
    const segments = prefix.split('/');
    segments[segments.length - 1] = `${segments.at(-1)}x`;
    take(segments, 0);
  }
  for (const suffix of set.suffixes) {
    const segments = suffix.split('/');
    segments[0] = `x${segments[0]}`;
    take(segments, 5 - segments.length);
  }
  return parts;
}

/**
 * Callers a principal pattern matches, the ns/sa layout first: for a prefix `td/ns/shop/`
 * `td/ns/shop/sa/any-sa`, for a suffix `/sa/admin` `td/ns/other/sa/admin`; else the bare
 * completion (`td/ns/shop/x`), which may lie outside the layout.
 */
export function principalPatternWitness(set: GlobSet, trustDomain: string, method: string, claims?: Record<string, unknown>): Subject[] {
  const forms: string[] = [...set.exact];
  for (const prefix of set.prefixes) forms.push(`${prefix}sa/${PLACEHOLDER_SA}`, `${prefix}${PLACEHOLDER_SA}`, `${prefix}/sa/${PLACEHOLDER_SA}`, `${prefix}x`);
  for (const suffix of set.suffixes) forms.push(`${trustDomain}/ns/${OTHER}${suffix}`, `${trustDomain}/ns/${OTHER}/sa/${suffix.replace(/^\//, '')}`, `${trustDomain}/ns/${OTHER}/sa/x${suffix}`, `x${suffix}`);
  if (set.any) forms.push(`${trustDomain}/ns/${OTHER}/sa/${PLACEHOLDER_SA}`);
  const subjects = forms.map((p) => subjectOf(p, method, claims)).filter((s) => globMatches(set, s.principal));
  return [...subjects.filter((s) => s.namespace !== null), ...subjects.filter((s) => s.namespace === null)];
}
