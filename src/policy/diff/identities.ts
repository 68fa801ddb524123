/**
 * The callers `policy diff` tries: every exact principal either policy names, every identity
 * the audit saw, and for what the policies name only by pattern (principal globs, namespaces,
 * trust domains, auth methods, token claims) a synthesized caller that exercises it. A
 * synthesized caller is built from what the policies themselves name, so the same two
 * policies always yield the same callers, in whichever order they are compared.
 */
import type { ClaimCondition } from '../claims.ts';
import { globMatches, type GlobSet } from '../glob.ts';
import { sourceMatches, type CompiledRule, type CompiledSource } from '../match.ts';
import type { Subject } from '../types.ts';
import {
  AUTH_METHOD_ORDER,
  byCodeUnit,
  credentialKey,
  describeCaller,
  FALLBACK_TRUST_DOMAIN,
  globWitnesses,
  identityKey,
  istio,
  layoutCandidates,
  OTHER,
  outsideAll,
  PLACEHOLDER_SA,
  principalParts,
  principalPatternWitness,
  stableJson,
  subjectOf,
  withoutClaims,
} from './subjects.ts';

export { identityKey } from './subjects.ts';

/** A caller the diff evaluates; `label` is what people read. */
export interface DiffIdentity {
  readonly label: string;
  /** True when no real caller of this name is known: a stand-in for a pattern. */
  readonly synthesized: boolean;
  readonly namedInPolicy: boolean;
  readonly seenInAudit: boolean;
  readonly subject: Subject;
  /**
   * For a caller tried with the token claims or auth method some source asks for: the keys
   * (identityKey) of the caller without them and of the stand-in that carries them. Its lines
   * are shown only when they differ from both, which already say what each side gains.
   */
  readonly sameAs?: readonly string[];
}

/** An identity read from an audit event; claims only when the event holds them. */
export interface SeenIdentity {
  readonly principal: string;
  readonly authMethod: string;
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** Claims that satisfy every condition: one matching value per claim name. */
function claimsFor(conditions: readonly ClaimCondition[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  for (const c of conditions) claims[c.name] = globWitnesses(c.set, 'any')[0] ?? 'any';
  return claims;
}

/** The auth methods the source lets through, one caller each (only jwt carries claims). */
function authMethodsFor(source: CompiledSource): string[] {
  const allowed = AUTH_METHOD_ORDER.filter((m) => (source.authMethods === null || source.authMethods.has(m)) && !(source.notAuthMethods?.has(m) ?? false));
  const methods = source.claims === null ? allowed : allowed.filter((m) => m === 'jwt');
  // A source that names no method treats them all alike; the methods other sources name
  // reach every caller through the combined callers.
  return source.authMethods === null && source.notAuthMethods === null ? methods.slice(0, 1) : methods;
}

/**
 * Claims for each value a condition lists (`env: [prod, staging]` gives one caller with
 * `prod` and one with `staging`), the other conditions at their first value: a change that
 * drops one value of a list is then seen.
 */
function claimVariants(conditions: readonly ClaimCondition[]): Record<string, unknown>[] {
  const base = claimsFor(conditions);
  const variants = new Map<string, Record<string, unknown>>([[stableJson(base), base]]);
  for (const c of conditions) {
    for (const value of globWitnesses(c.set, 'any')) {
      const claims = { ...base, [c.name]: value };
      variants.set(stableJson(claims), claims);
    }
  }
  return [...variants.values()];
}

/** A caller per auth method and claim value the source lets through, and per notClaims value it shuts out. */
function sourceWitnesses(source: CompiledSource, context: Context): DiffIdentity[] {
  const found: (DiffIdentity | null)[] = [];
  const claimSets = source.claims === null ? [undefined] : claimVariants(source.claims);
  for (const method of authMethodsFor(source)) for (const claims of claimSets) found.push(sourceWitness(source, context, method, claims, false));
  if (source.notClaims !== null) {
    const base = claimsFor(source.claims ?? []);
    for (const excluded of claimVariants(source.notClaims)) found.push(sourceWitness(source, context, 'jwt', { ...base, ...excluded }, true));
  }
  return found.filter((w): w is DiffIdentity => w !== null);
}

interface Context {
  readonly trustDomain: string;
  readonly outsideNamespace: string;
}

/**
 * A caller the source matches, or null when none is found: its named principal, or one in
 * its namespace and trust domain, with its auth method and claims. `withNotClaims` builds the
 * caller the source's notClaims exclude instead (it must then not match).
 */
function sourceWitness(source: CompiledSource, context: Context, method: string, claims: Record<string, unknown> | undefined, withNotClaims: boolean): DiffIdentity | null {
  const candidates: Subject[] = [];
  const exact = source.principals === null ? [] : [...source.principals.exact].sort(byCodeUnit);
  for (const principal of exact) candidates.push(subjectOf(principal, method, claims));
  // Callers in the ns/sa layout from every trust domain, namespace and service account the
  // source names or its principal patterns spell out, so `*ers` with namespaces [shop]
  // finds td/ns/shop/sa/xers.
  const parts = principalParts(source.principals);
  const trustDomains = [...(source.trustDomains === null ? [context.trustDomain] : globWitnesses(source.trustDomains, context.trustDomain)), ...parts.trustDomains];
  const namespaces = [...(source.namespaces === null ? [context.outsideNamespace] : globWitnesses(source.namespaces, 'any-ns')), ...parts.namespaces];
  candidates.push(...layoutCandidates(trustDomains, namespaces, [PLACEHOLDER_SA, ...parts.serviceAccounts], method, claims));
  if (source.principals !== null) candidates.push(...principalPatternWitness(source.principals, trustDomains[0] ?? context.trustDomain, method, claims));
  const found = candidates.find((s) => sourceMatches(source, s) !== withNotClaims);
  if (found === undefined) return null;
  const named = exact.includes(found.principal);
  const who = named ? found.principal : `any caller with ${source.description}`;
  return { label: `${who}${describeCaller(found)}`, synthesized: true, namedInPolicy: named, seenInAudit: false, subject: found };
}

/** What the policies name, gathered once from both. */
function namedPieces(rules: readonly CompiledRule[]): { sources: CompiledSource[]; principals: Set<string>; principalSets: GlobSet[]; namespaceSets: GlobSet[]; trustDomainSets: GlobSet[] } {
  const sources: CompiledSource[] = [];
  const principals = new Set<string>();
  const principalSets: GlobSet[] = [];
  const namespaceSets: GlobSet[] = [];
  const trustDomainSets: GlobSet[] = [];
  for (const rule of rules) {
    for (const source of rule.sources ?? []) {
      sources.push(source);
      for (const set of [source.principals, source.notPrincipals]) {
        if (set === null) continue;
        principalSets.push(set);
        for (const p of set.exact) principals.add(p);
      }
      for (const set of [source.namespaces, source.notNamespaces]) if (set !== null) namespaceSets.push(set);
      if (source.trustDomains !== null) trustDomainSets.push(source.trustDomains);
    }
  }
  return { sources, principals, principalSets, namespaceSets, trustDomainSets };
}

/** The trust domain most exact principals use (ties: the first in code-unit order). */
function usualTrustDomain(principals: Iterable<string>): string {
  const counts = new Map<string, number>();
  for (const p of principals) {
    const td = p.split('/')[0] ?? '';
    if (td !== '') counts.set(td, (counts.get(td) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || byCodeUnit(a[0], b[0]));
  return ranked[0]?.[0] ?? FALLBACK_TRUST_DOMAIN;
}

// Whom a label belongs to when two ways of building arrive at the same caller: a real name
// beats a stand-in, then the shorter and code-unit-first label, whatever the order of building.
function preferred(a: DiffIdentity, b: DiffIdentity): DiffIdentity {
  const rank = (i: DiffIdentity) => (i.seenInAudit ? 0 : !i.synthesized ? 1 : i.sameAs !== undefined ? 4 : i.namedInPolicy ? 2 : 3);
  const merged = (winner: DiffIdentity): DiffIdentity => {
    const { sameAs: _drop, ...rest } = winner;
    // A caller built two ways stands on its own unless both ways call it a variant.
    const general = a.sameAs !== undefined && b.sameAs !== undefined ? { sameAs: a.sameAs.filter((k) => b.sameAs!.includes(k)) } : {};
    return { ...rest, ...general, namedInPolicy: a.namedInPolicy || b.namedInPolicy, seenInAudit: a.seenInAudit || b.seenInAudit, synthesized: a.synthesized && b.synthesized };
  };
  if (rank(a) !== rank(b)) return merged(rank(a) < rank(b) ? a : b);
  if (a.label.length !== b.label.length) return merged(a.label.length < b.label.length ? a : b);
  return merged(byCodeUnit(a.label, b.label) <= 0 ? a : b);
}

/**
 * How many combined callers (a caller × another source's credentials) are tried at most. Past
 * it, only stand-ins are combined (not every named principal), then only the first stand-ins
 * by label; `limited` says so.
 */
export const MAX_COMBINED = 20_000;

export interface DiffIdentities {
  readonly identities: DiffIdentity[];
  /** True when MAX_COMBINED cut the combined callers. */
  readonly limited: boolean;
}

/** Every caller to try for the rules of both policies, sorted: real names first, then stand-ins. */
export function diffIdentities(rules: readonly CompiledRule[], seen: readonly SeenIdentity[]): DiffIdentities {
  const pieces = namedPieces(rules);
  const context: Context = { trustDomain: usualTrustDomain(pieces.principals), outsideNamespace: outsideAll(pieces.namespaceSets) };
  const found = new Map<string, DiffIdentity>();
  const add = (identity: DiffIdentity | null): void => {
    if (identity === null) return;
    const key = identityKey(identity.subject);
    const before = found.get(key);
    found.set(key, before === undefined ? identity : preferred(before, identity));
  };
  for (const s of seen) {
    const subject = subjectOf(s.principal, s.authMethod, s.claims);
    add({ label: `${s.principal}${describeCaller(subject)}`, synthesized: false, namedInPolicy: pieces.principals.has(s.principal), seenInAudit: true, subject });
  }
  for (const principal of pieces.principals) {
    add({ label: principal, synthesized: false, namedInPolicy: true, seenInAudit: false, subject: subjectOf(principal, 'mtls') });
  }
  const { trustDomain, outsideNamespace } = context;
  const namespaces = new Set(pieces.namespaceSets.flatMap((set) => globWitnesses(set, 'any-ns')));
  for (const ns of namespaces) {
    add({ label: `any sa in ns ${ns}`, synthesized: true, namedInPolicy: false, seenInAudit: false, subject: istio(trustDomain, ns, PLACEHOLDER_SA, 'mtls') });
  }
  add({ label: 'any caller in no named namespace', synthesized: true, namedInPolicy: false, seenInAudit: false, subject: istio(trustDomain, outsideNamespace, PLACEHOLDER_SA, 'mtls') });
  add({ label: 'any caller outside the ns/sa layout', synthesized: true, namedInPolicy: false, seenInAudit: false, subject: subjectOf(`${trustDomain}/${OTHER}`, 'mtls') });
  if (pieces.trustDomainSets.length > 0) {
    for (const td of new Set([...pieces.trustDomainSets.flatMap((set) => globWitnesses(set, 'any.example')), outsideAll(pieces.trustDomainSets, 'other.example')])) {
      add({ label: `any caller in trust domain ${td}`, synthesized: true, namedInPolicy: false, seenInAudit: false, subject: istio(td, outsideNamespace, PLACEHOLDER_SA, 'mtls') });
    }
  }
  for (const set of pieces.principalSets) {
    const patterns: [string, GlobSet][] = [
      ...set.prefixes.map((p): [string, GlobSet] => [`${p}*`, { ...set, any: false, exact: new Set(), prefixes: [p], suffixes: [] }]),
      ...set.suffixes.map((x): [string, GlobSet] => [`*${x}`, { ...set, any: false, exact: new Set(), prefixes: [], suffixes: [x] }]),
    ];
    for (const [pattern, one] of patterns) {
      const parts = principalParts(one);
      const layout = layoutCandidates([trustDomain, ...parts.trustDomains], [outsideNamespace, ...parts.namespaces], [PLACEHOLDER_SA, ...parts.serviceAccounts], 'mtls');
      const subject = [...layout, ...principalPatternWitness(one, trustDomain, 'mtls')].find((c) => globMatches(one, c.principal));
      if (subject !== undefined) add({ label: `any caller matching principal ${pattern}`, synthesized: true, namedInPolicy: false, seenInAudit: false, subject });
    }
  }
  const plain = [...found.values()].filter((i) => !i.seenInAudit && i.subject.authMethod === 'mtls' && i.subject.claims === undefined);
  // How a source wants its caller to prove itself (auth method, claims), one stand-in each.
  const credentials = new Map<string, DiffIdentity>();
  for (const source of pieces.sources) {
    for (const witness of sourceWitnesses(source, context)) {
      add(witness);
      if (witness.subject.authMethod === 'mtls' && witness.subject.claims === undefined) continue;
      const key = credentialKey(witness.subject);
      const before = credentials.get(key);
      if (before === undefined || byCodeUnit(identityKey(witness.subject), identityKey(before.subject)) < 0) credentials.set(key, witness);
    }
  }
  // Every other caller with those credentials too: a DENY for a namespace or an ALLOW for a
  // principal meets a claims rule only in a caller that has both.
  let bases = plain;
  let limited = false;
  if (bases.length * credentials.size > MAX_COMBINED) {
    limited = true;
    const byLabel = (a: DiffIdentity, b: DiffIdentity) => byCodeUnit(a.label, b.label) || byCodeUnit(identityKey(a.subject), identityKey(b.subject));
    bases = plain.filter((i) => i.synthesized).sort(byLabel).slice(0, Math.floor(MAX_COMBINED / credentials.size));
  }
  for (const base of bases) {
    for (const general of credentials.values()) {
      const { claims } = general.subject;
      const subject: Subject = Object.freeze({ ...withoutClaims(base.subject), authMethod: general.subject.authMethod, ...(claims === undefined ? {} : { claims }) });
      add({ label: `${base.label}${describeCaller(subject)}`, synthesized: true, namedInPolicy: base.namedInPolicy, seenInAudit: false, subject, sameAs: [identityKey(base.subject), identityKey(general.subject)] });
    }
  }
  const rank = (i: DiffIdentity) => (i.synthesized ? 1 : 0);
  const identities = [...found.values()].sort((a, b) => rank(a) - rank(b) || byCodeUnit(a.label, b.label) || byCodeUnit(identityKey(a.subject), identityKey(b.subject)));
  return { identities, limited };
}
