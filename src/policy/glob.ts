/**
 * Istio's string-match semantics, compiled once: an entry is exact, `*` alone (any value),
 * a prefix `abc*` or a suffix `*abc`. Istio deliberately has no general wildcards, so a
 * reader can tell what an entry covers without running it; we keep that property.
 */

export interface GlobSet {
  /** True when the list contains `*`. */
  readonly any: boolean;
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
  readonly suffixes: readonly string[];
  /** The entries as written, for reasons and traces. */
  readonly patterns: readonly string[];
}

/** Why a pattern is not one of Istio's four forms, or null when it is. */
export function globProblem(pattern: string): string | null {
  if (pattern === '') return 'must not be empty';
  if (pattern === '*') return null;
  const stars = pattern.split('*').length - 1;
  if (stars === 0) return null;
  if (stars === 1 && (pattern.startsWith('*') || pattern.endsWith('*'))) return null;
  return `"${pattern}": "*" may appear only alone, at the start (suffix match) or at the end (prefix match)`;
}

/** Builds the matcher; `normalize` maps each entry first (e.g. strips `spiffe://`). */
export function compileGlobSet(patterns: readonly string[], normalize: (p: string) => string = (p) => p): GlobSet {
  let any = false;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  for (const raw of patterns) {
    const pattern = normalize(raw);
    if (pattern === '*') any = true;
    else if (pattern.endsWith('*')) prefixes.push(pattern.slice(0, -1));
    else if (pattern.startsWith('*')) suffixes.push(pattern.slice(1));
    else exact.add(pattern);
  }
  return Object.freeze({ any, exact, prefixes, suffixes, patterns: Object.freeze([...patterns]) });
}

export function globMatches(set: GlobSet, value: string): boolean {
  if (set.any || set.exact.has(value)) return true;
  for (const prefix of set.prefixes) if (value.startsWith(prefix)) return true;
  for (const suffix of set.suffixes) if (value.endsWith(suffix)) return true;
  return false;
}

/** True when only exact entries are present, so the set can key an index. */
export function isExactOnly(set: GlobSet): boolean {
  return !set.any && set.prefixes.length === 0 && set.suffixes.length === 0;
}

export function describeGlobSet(set: GlobSet): string {
  return set.patterns.join(', ');
}
