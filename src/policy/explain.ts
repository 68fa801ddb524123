/**
 * Words for what the matchers decided: why each rule did or did not match, for
 * `meshgate policy explain` and for the default-deny reason. Nothing here decides; every
 * `matched` comes from the same functions evaluate() uses.
 */
import { tokenMismatch } from './claims.ts';
import { pathMatches, uncoveredExample } from './firestore-path.ts';
import { describeFirestorePath, subtreeGrantExamples } from './firestore-request.ts';
import { describeGlobSet, globMatches } from './glob.ts';
import {
  firstSource,
  firstTarget,
  describeGrant,
  describeMatch,
  mariadbDatabaseMatches,
  type CompiledFirestoreTarget,
  type CompiledRule,
  type CompiledSource,
  type CompiledTarget,
} from './match.ts';
import type { Decision, Explanation, FirestoreRequest, PolicyRequest, Subject, TraceEntry } from './types.ts';

function sourceMismatch(source: CompiledSource, subject: Subject): string {
  const { principal, namespace, trustDomain } = subject;
  if (source.principals !== null && !globMatches(source.principals, principal)) {
    return `principal ${principal} is not in principals ${describeGlobSet(source.principals)}`;
  }
  if (source.notPrincipals !== null && globMatches(source.notPrincipals, principal)) {
    return `principal ${principal} is in notPrincipals ${describeGlobSet(source.notPrincipals)}`;
  }
  if (source.namespaces !== null) {
    if (namespace === null) return `the SPIFFE ID has no namespace, and the rule needs namespaces ${describeGlobSet(source.namespaces)}`;
    if (!globMatches(source.namespaces, namespace)) {
      return `namespace ${namespace} is not in namespaces ${describeGlobSet(source.namespaces)}`;
    }
  }
  if (source.notNamespaces !== null && namespace !== null && globMatches(source.notNamespaces, namespace)) {
    return `namespace ${namespace} is in notNamespaces ${describeGlobSet(source.notNamespaces)}`;
  }
  if (source.trustDomains !== null && !globMatches(source.trustDomains, trustDomain)) {
    return `trust domain ${trustDomain} is not in trustDomains ${describeGlobSet(source.trustDomains)}`;
  }
  return tokenMismatch(subject, source.authMethods, source.notAuthMethods, source.claims, source.notClaims) ?? 'matches';
}

function firestoreMismatch(target: CompiledFirestoreTarget, request: FirestoreRequest): string {
  const { operation, database, path, pathKind } = request;
  if (target.operations !== null && !target.operations.has(operation)) {
    return `operation ${operation} is not in operations ${[...target.operations].join(', ')}`;
  }
  if (!globMatches(target.databases, database)) return `Firestore database ${database} is not in databases ${describeGlobSet(target.databases)}`;
  const list = `collections ${target.collections.map((c) => c.source).join(', ')}`;
  const what = describeFirestorePath(path, pathKind);
  if (target.coverage === 'some') {
    if (pathMatches(target.collections, path, pathKind, 'some')) return 'matches';
    return pathKind === 'document' ? `${what} is not in ${list}` : `no document the ${what} can reach is in ${list}`;
  }
  const example = uncoveredExample(target.collections, path, pathKind);
  if (example === null) return 'matches';
  return pathKind === 'document' ? `${what} is not in ${list}` : `${list} do not cover the ${what}: it can reach ${example}`;
}

function targetMismatch(target: CompiledTarget, request: PolicyRequest): string {
  if (target.engine === 'firestore') {
    return request.engine === 'firestore' ? firestoreMismatch(target, request) : 'a firestore target does not apply to a MariaDB connection';
  }
  if (request.engine !== 'mysql') return 'a mariadb target does not apply to a Firestore request';
  const databases = target.databases === null ? null : describeGlobSet(target.databases);
  if (databases !== null && !mariadbDatabaseMatches(target, request)) {
    if (request.database === null) return `no database was named, and databases ${databases} has no "*"`;
    return `database ${request.database} is not in databases ${databases}`;
  }
  return request.direct === true && !target.direct ? 'the target does not allow direct credentials (no direct: true)' : 'matches';
}

function several<T>(items: readonly T[], label: string, why: (item: T) => string): string {
  if (items.length === 1) return why(items[0]!);
  return `nothing in ${label} matches (${items.map((item, i) => `${label}[${i}]: ${why(item)}`).join('; ')})`;
}

function mismatch(rule: CompiledRule, subject: Subject, request: PolicyRequest): string | null {
  if (firstSource(rule, subject) < 0) {
    return several(rule.sources ?? [], 'from', (s) => sourceMismatch(s, subject));
  }
  if (firstTarget(rule, request) < 0) {
    return `the caller matches, but ${several(rule.targets ?? [], 'to', (t) => targetMismatch(t, request))}`;
  }
  return null;
}

function matchedWhy(rule: CompiledRule, subject: Subject, request: PolicyRequest, decision: Decision): string {
  const source = rule.sources?.[firstSource(rule, subject)] ?? null;
  const target = rule.targets?.[firstTarget(rule, request)] ?? null;
  if (rule.action === 'DENY') {
    const what = describeMatch('DENY', source, target);
    return decision.ruleId === rule.id ? `decides: ${what}` : `matches too: ${what}`;
  }
  if (decision.ruleId === rule.id) return `decides: ${describeGrant(target)}`;
  if (!decision.allow) return `matches, but DENY rule ${decision.ruleId ?? '?'} wins`;
  return `matches, but rule ${decision.ruleId ?? '?'} comes first`;
}

/**
 * Every rule in evaluation order (DENY rules, then ALLOW rules, each in file order), then the
 * dry-run rules in the order dryRun() considers them, judged against what they would decide.
 */
export function explainDecision(
  rules: readonly CompiledRule[],
  subject: Subject,
  request: PolicyRequest,
  decision: Decision,
  dryRun: Decision | null,
  /** Why the request was refused before any rule (firestoreRequestProblem), or null. */
  malformed: string | null = null,
): Explanation {
  const trace: TraceEntry[] = [];
  for (const dry of [false, true]) {
    for (const action of ['DENY', 'ALLOW'] as const) {
      for (const rule of rules) {
        if (rule.action !== action || rule.dryRun !== dry) continue;
        const why = malformed === null ? mismatch(rule, subject, request) : `not considered: ${malformed}`;
        const judged = dry ? dryRunWhy(rule, subject, request, dryRun) : null;
        trace.push({
          ruleId: rule.id,
          action: dry ? 'AUDIT' : action,
          matched: why === null,
          why: why ?? judged ?? matchedWhy(rule, subject, request, decision),
        });
      }
    }
  }
  return { ...decision, trace, dryRun };
}

function dryRunWhy(rule: CompiledRule, subject: Subject, request: PolicyRequest, dryRun: Decision | null): string {
  if (dryRun === null || dryRun.ruleId !== rule.id) return `matches as a dry-run ${rule.action}, but dry-run rule ${dryRun?.ruleId ?? '?'} comes first`;
  return `would ${rule.action === 'DENY' ? 'deny' : 'allow'} (dry run, not enforced): ${matchedWhy(rule, subject, request, dryRun).replace(/^decides: /, '')}`;
}

/** The reason when nothing allowed: says who and what, and where the fix goes. */
export function defaultDenyReason(subject: Subject, request: PolicyRequest): string {
  let what: string;
  if (request.engine === 'firestore') {
    what = `for Firestore ${request.operation} on ${describeFirestorePath(request.path, request.pathKind)} in database ${request.database}`;
  } else if (request.direct === true) {
    // Sessions may well be allowed: say what direct credentials need beyond them.
    const database = request.database === null ? 'that name no database' : `to database ${request.database}`;
    return (
      `no ALLOW rule matches ${subject.spiffeId} for direct credentials ${database}: ` +
      'a rule must allow direct access (to.mariadb.direct: true) before meshgate hands out an account whose statements it cannot see'
    );
  } else {
    what =
      request.database === null
        ? 'for a connection that names no database (only a rule with databases "*" allows that)'
        : `for database ${request.database}`;
  }
  const hint = request.engine === 'firestore' && request.pathKind === 'subtree' ? `: ${subtreeHint(request.path)}` : '';
  return `no ALLOW rule matches ${subject.spiffeId} ${what}; add one to the policy directory${hint}`;
}

/**
 * What lets a subtree request through, for its refusals. A subtree reaches every collection
 * at any depth, so patterns that fix the depth never cover it, which is rarely obvious from
 * the refusal alone.
 */
export function subtreeHint(path: string): string {
  return (
    `a request for every collection at any depth needs one ALLOW target whose collections cover all of it, ` +
    `such as ${subtreeGrantExamples(path).join(' or ')}, and no DENY rule that matches anything beneath it`
  );
}

/** A DENY's reason for a subtree request: the rule matches some document beneath. */
export function subtreeDenyReason(reason: string, path: string): string {
  return `${reason}; it matches a document of the ${describeFirestorePath(path, 'subtree')}, and ${subtreeHint(path)}`;
}

/** The reason for a request refused before any rule. */
export function malformedReason(problem: string): string {
  return `malformed Firestore request, denied: ${problem}`;
}
