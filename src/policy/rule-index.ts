/**
 * Finding the first matching rule among thousands without trying them all. Each rule is
 * filed under the facts a caller must have for it to match: its principals (exact or
 * prefix), else its namespaces (exact or prefix), else one token claim's exact values, else
 * its auth methods. A caller is then tried against the rules filed
 * under its own principal, namespace and auth method, plus the rules no key describes (globs,
 * claims-only sources, no `from`), walked as one list in file order so the first match is the
 * one a linear scan would find. Keys only pick candidates: ruleDecision still checks every
 * condition, so a key narrower than the rule would be wrong, one wider merely slower.
 */
import { subtreeDenyReason } from './explain.ts';
import { claimValue, type ClaimCondition } from './claims.ts';
import type { GlobSet } from './glob.ts';
import { ruleDecision, type CompiledRule, type CompiledSource } from './match.ts';
import type { Decision, PolicyRequest, Subject } from './types.ts';

interface Bucket {
  /** Positions in the deny or allow array, ascending (file order). */
  readonly deny: number[];
  readonly allow: number[];
}

// Keys while building, as tagged strings (the tag keeps a namespace from meeting a principal);
// split by tag into one map per kind afterwards, so a lookup hashes the caller's own strings
// (whose hashes V8 keeps) rather than a key built per call.
const PRINCIPAL = 'p ';
const PRINCIPAL_PREFIX = 'P ';
const NAMESPACE = 'n ';
const NAMESPACE_PREFIX = 'N ';
const METHOD = 'a ';
const CLAIM = 'c ';
const claimKey = (name: string, value: string) => `${CLAIM}${name}\u0000${value}`;

/** What a glob list keys: its exact entries and prefixes; null with `*` or a suffix (not keyable). */
function globKeys(set: GlobSet, exactTag: string, prefixTag: string, prefixLengths: Set<number>): string[] | null {
  if (set.any || set.suffixes.length > 0) return null;
  for (const prefix of set.prefixes) prefixLengths.add(prefix.length);
  return [...[...set.exact].map((value) => exactTag + value), ...set.prefixes.map((prefix) => prefixTag + prefix)];
}

interface KeyLengths {
  readonly principal: Set<number>;
  readonly namespace: Set<number>;
  /** The claims some rule is keyed by, by name: a caller's values of these are looked up. */
  readonly claims: Map<string, ClaimCondition>;
}

/** The keys a caller must hold one of for this source to match it, or null when none says. */
function sourceKeys(source: CompiledSource, lengths: KeyLengths): string[] | null {
  if (source.principals !== null) {
    const keys = globKeys(source.principals, PRINCIPAL, PRINCIPAL_PREFIX, lengths.principal);
    if (keys !== null) return keys;
  }
  if (source.namespaces !== null) {
    const keys = globKeys(source.namespaces, NAMESPACE, NAMESPACE_PREFIX, lengths.namespace);
    if (keys !== null) return keys;
  }
  // One claim whose values are all exact keys the source (the claims are ANDed).
  const claim = source.claims?.find((condition) => !condition.set.any && condition.set.prefixes.length === 0 && condition.set.suffixes.length === 0);
  if (claim !== undefined) {
    lengths.claims.set(claim.name, claim);
    return [...claim.set.exact].map((value) => claimKey(claim.name, value));
  }
  if (source.authMethods !== null) return [...source.authMethods].map((method) => METHOD + method);
  return null;
}

/** A rule matches through any of its sources: keyed only when every source is. */
function ruleKeys(rule: CompiledRule, lengths: KeyLengths): Set<string> | null {
  if (rule.sources === null) return null;
  const keys = new Set<string>();
  for (const source of rule.sources) {
    const own = sourceKeys(source, lengths);
    if (own === null) return null;
    for (const key of own) keys.add(key);
  }
  return keys;
}

function file(rules: readonly CompiledRule[], general: number[], byKey: Map<string, Bucket>, lengths: KeyLengths, list: 'deny' | 'allow'): void {
  rules.forEach((rule, position) => {
    const keys = ruleKeys(rule, lengths);
    if (keys === null) {
      general.push(position);
      return;
    }
    for (const key of keys) {
      let bucket = byKey.get(key);
      if (bucket === undefined) byKey.set(key, (bucket = { deny: [], allow: [] }));
      bucket[list].push(position);
    }
  });
}

/**
 * Walks ascending position lists as one, in file order, each position once (a rule filed
 * under both the caller's principal and its namespace is in two lists). `lists[0..count)`.
 */
function firstMatch(rules: readonly CompiledRule[], lists: readonly (readonly number[])[], count: number, cursors: Int32Array, subject: Subject, request: PolicyRequest): Decision | null {
  cursors.fill(0, 0, count);
  for (;;) {
    let next = Infinity;
    for (let i = 0; i < count; i++) {
      const list = lists[i]!;
      const at = cursors[i]!;
      if (at < list.length && list[at]! < next) next = list[at]!;
    }
    if (next === Infinity) return null;
    for (let i = 0; i < count; i++) if (lists[i]![cursors[i]!] === next) cursors[i]!++;
    const decision = ruleDecision(rules[next]!, subject, request);
    if (decision !== null) return decision;
  }
}

/** What claimValueMatches compares as text: strings, numbers and booleans. */
function scalar(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** First matching DENY, else first matching ALLOW, over one set of rules (enforced or dry run). */
export interface RuleIndex {
  first(subject: Subject, request: PolicyRequest): Decision | null;
  readonly size: number;
}

function indexOneEngine(rules: readonly CompiledRule[]): RuleIndex {
  const denies = rules.filter((r) => r.action === 'DENY');
  const allows = rules.filter((r) => r.action === 'ALLOW');
  const generalDeny: number[] = [];
  const generalAllow: number[] = [];
  const byKey = new Map<string, Bucket>();
  const lengths: KeyLengths = { principal: new Set(), namespace: new Set(), claims: new Map() };
  file(denies, generalDeny, byKey, lengths, 'deny');
  file(allows, generalAllow, byKey, lengths, 'allow');
  // A caller's prefixes are looked up only at the lengths some rule's prefix has.
  const principalLengths = [...lengths.principal].sort((a, b) => a - b);
  const namespaceLengths = [...lengths.namespace].sort((a, b) => a - b);
  const byTag = new Map<string, Map<string, Bucket>>();
  const claimMaps = new Map<string, Map<string, Bucket>>();
  for (const [key, bucket] of byKey) {
    const tag = key.slice(0, 2);
    if (tag === CLAIM) {
      const [name, value] = key.slice(2).split('\u0000') as [string, string];
      let values = claimMaps.get(name);
      if (values === undefined) claimMaps.set(name, (values = new Map()));
      values.set(value, bucket);
      continue;
    }
    let map = byTag.get(tag);
    if (map === undefined) byTag.set(tag, (map = new Map()));
    map.set(key.slice(2), bucket);
  }
  const none = new Map<string, Bucket>();
  const byPrincipal = byTag.get(PRINCIPAL) ?? none;
  const byPrincipalPrefix = byTag.get(PRINCIPAL_PREFIX) ?? none;
  const byNamespace = byTag.get(NAMESPACE) ?? none;
  const byNamespacePrefix = byTag.get(NAMESPACE_PREFIX) ?? none;
  const byMethod = byTag.get(METHOD) ?? none;
  const claimIndex = [...lengths.claims.values()].map((condition) => ({ condition, values: claimMaps.get(condition.name) ?? none }));
  // Scratch for one evaluation at a time (evaluation is synchronous): no allocation per call.
  const buckets: Bucket[] = [];
  const lists: (readonly number[])[] = [];
  // A list claim (groups) finds a bucket per element: the scratch grows to the most seen.
  let cursors = new Int32Array(8);

  // Fills `buckets` with the caller's; returns how many. No closure per call: this runs per decision.
  const gather = (subject: Subject): number => {
    let n = 0;
    const principal = subject.principal;
    let bucket = byPrincipal.get(principal);
    if (bucket !== undefined) buckets[n++] = bucket;
    for (const length of principalLengths) {
      if (length > principal.length) break;
      bucket = byPrincipalPrefix.get(principal.slice(0, length));
      if (bucket !== undefined) buckets[n++] = bucket;
    }
    const namespace = subject.namespace;
    if (namespace !== null) {
      bucket = byNamespace.get(namespace);
      if (bucket !== undefined) buckets[n++] = bucket;
      for (const length of namespaceLengths) {
        if (length > namespace.length) break;
        bucket = byNamespacePrefix.get(namespace.slice(0, length));
        if (bucket !== undefined) buckets[n++] = bucket;
      }
    }
    if (subject.authMethod !== undefined) {
      bucket = byMethod.get(subject.authMethod);
      if (bucket !== undefined) buckets[n++] = bucket;
    }
    if (subject.claims !== undefined) {
      for (const { condition, values } of claimIndex) {
        const value = claimValue(subject.claims, condition);
        if (Array.isArray(value)) {
          for (const element of value) {
            bucket = scalar(element) ? values.get(String(element)) : undefined;
            if (bucket !== undefined) buckets[n++] = bucket;
          }
        } else if (scalar(value)) {
          bucket = values.get(String(value));
          if (bucket !== undefined) buckets[n++] = bucket;
        }
      }
    }
    return n;
  };
  const walk = (action: 'deny' | 'allow', found: number, subject: Subject, request: PolicyRequest): Decision | null => {
    lists[0] = action === 'deny' ? generalDeny : generalAllow;
    for (let i = 0; i < found; i++) lists[i + 1] = buckets[i]![action];
    if (cursors.length < found + 1) cursors = new Int32Array(2 * (found + 1));
    return firstMatch(action === 'deny' ? denies : allows, lists, found + 1, cursors, subject, request);
  };

  return {
    size: rules.length,
    first(subject, request) {
      const found = gather(subject);
      const denied = walk('deny', found, subject, request);
      if (denied !== null) {
        // The rule may name one document deep inside; the caller needs to know why all is refused.
        if (request.engine === 'firestore' && request.pathKind === 'subtree') return { ...denied, reason: subtreeDenyReason(denied.reason, request.path) };
        return denied;
      }
      return walk('allow', found, subject, request);
    },
  };
}

/** Whether a rule can match a request of `engine`: a target of that engine, or no `to` at all. */
function reaches(rule: CompiledRule, engine: PolicyRequest['engine']): boolean {
  return rule.targets === null || rule.targets.some((target) => target.engine === engine);
}

/**
 * One index per engine: a MariaDB login never walks the Firestore rules of its namespace,
 * nor a Firestore call the MariaDB ones. Each keeps its rules in file order, so the first
 * match is the same as over all rules (a rule of the other engine never matches).
 */
export function indexRules(rules: readonly CompiledRule[]): RuleIndex {
  const mysql = indexOneEngine(rules.filter((rule) => reaches(rule, 'mysql')));
  const firestore = indexOneEngine(rules.filter((rule) => reaches(rule, 'firestore')));
  return {
    size: rules.length,
    first: (subject, request) => (request.engine === 'mysql' ? mysql : firestore).first(subject, request),
  };
}
