/**
 * A rule after compilation: globs turned into matchers and every Decision it can produce
 * built in advance, so a match allocates nothing and the audit event can share the object.
 * The boolean matchers here are the single definition of "matches"; explain() only adds
 * words to their verdicts and never decides on its own.
 */
import { authMethodsHold, claimsHold, compileAuthMethods, compileClaims, describeClaims, type ClaimCondition } from './claims.ts';
import { compilePathPattern, pathMatches, type Coverage, type PathPattern } from './firestore-path.ts';
import { compileGlobSet, describeGlobSet, globMatches, type GlobSet } from './glob.ts';
import {
  FIRESTORE_DEFAULT_DATABASE,
  type FirestoreTargetSpec,
  type MariadbTargetSpec,
  type PolicyRuleSpec,
  type PolicySourceSpec,
  type TargetSpec,
} from './schema.ts';
import { DEFAULT_PARAMETER_AUDIT, DEFAULT_SERVICE_CLASS, type Decision, type FirestoreRequest, type MysqlRequest, type ParameterAudit, type PolicyRequest, type Subject, type TraceQueryText } from './types.ts';

export type Action = 'ALLOW' | 'DENY';

export interface CompiledSource {
  readonly principals: GlobSet | null;
  readonly notPrincipals: GlobSet | null;
  readonly namespaces: GlobSet | null;
  readonly notNamespaces: GlobSet | null;
  readonly trustDomains: GlobSet | null;
  readonly authMethods: ReadonlySet<string> | null;
  readonly notAuthMethods: ReadonlySet<string> | null;
  readonly claims: readonly ClaimCondition[] | null;
  readonly notClaims: readonly ClaimCondition[] | null;
  readonly description: string;
}

export interface CompiledMariadbTarget {
  /** The request engine this target applies to. */
  readonly engine: 'mysql';
  /** Null when the target names no databases: any database, or none. */
  readonly databases: GlobSet | null;
  readonly role: string | null;
  readonly allowLocalInfile: boolean;
  readonly auditParameters: ParameterAudit;
  readonly traceQueryText: TraceQueryText | null;
  /**
   * Whether requests for direct credentials match: an ALLOW target only with `direct: true`,
   * a DENY target always (a deny refuses direct credentials as it refuses sessions).
   */
  readonly direct: boolean;
  readonly description: string;
}

export interface CompiledFirestoreTarget {
  readonly engine: 'firestore';
  /** Firestore database ids; `(default)` when the target names none. */
  readonly databases: GlobSet;
  readonly collections: readonly PathPattern[];
  /** Null when omitted (DENY only): every operation. */
  readonly operations: ReadonlySet<string> | null;
  /** ALLOW targets must cover every document a request reaches; DENY targets some. */
  readonly coverage: Coverage;
  readonly serviceAccount: string | null;
  readonly traceQueryText: TraceQueryText | null;
  readonly description: string;
}

export type CompiledTarget = CompiledMariadbTarget | CompiledFirestoreTarget;

export interface CompiledRule {
  readonly id: string;
  /** What the rule decides where it matches; for a dry run, what it would decide. */
  readonly action: Action;
  /** `action: AUDIT` on the rule or its document: recorded where it matches, never enforced. */
  readonly dryRun: boolean;
  /** Null when `from` is omitted: every caller. */
  readonly sources: readonly CompiledSource[] | null;
  /** Null when `to` is omitted (DENY only): every request. */
  readonly targets: readonly CompiledTarget[] | null;
  /** decisions[source][target]; index 0 stands for an omitted `from` or `to`. */
  readonly decisions: readonly (readonly Decision[])[];
}

const SPIFFE_SCHEME = 'spiffe://';

/** Policy authors may write full SPIFFE IDs; subjects are matched in Istio principal form. */
function principalForm(pattern: string): string {
  return pattern.startsWith(SPIFFE_SCHEME) ? pattern.slice(SPIFFE_SCHEME.length) : pattern;
}

/** `<policy name>/<rule id>`, with the rule's index when it has no id. */
export function ruleIdOf(policyName: string, rule: PolicyRuleSpec, index: number): string {
  return `${policyName}/${rule.id ?? String(index)}`;
}

function globOrNull(patterns: readonly string[] | undefined, normalize?: (p: string) => string): GlobSet | null {
  return patterns === undefined ? null : compileGlobSet(patterns, normalize);
}

function compileSource(spec: PolicySourceSpec): CompiledSource {
  const fields: [string, readonly string[] | undefined][] = [
    ['principals', spec.principals],
    ['notPrincipals', spec.notPrincipals],
    ['namespaces', spec.namespaces],
    ['notNamespaces', spec.notNamespaces],
    ['trustDomains', spec.trustDomains],
    ['authMethods', spec.authMethods],
    ['notAuthMethods', spec.notAuthMethods],
  ];
  const claims = compileClaims(spec.claims);
  const notClaims = compileClaims(spec.notClaims);
  const description = [
    ...fields.filter((f): f is [string, readonly string[]] => f[1] !== undefined).map(([name, list]) => `${name} ${list.join(', ')}`),
    ...(claims === null ? [] : [describeClaims(claims, false)]),
    ...(notClaims === null ? [] : [describeClaims(notClaims, true)]),
  ].join(' and ');
  return {
    principals: globOrNull(spec.principals, principalForm),
    notPrincipals: globOrNull(spec.notPrincipals, principalForm),
    namespaces: globOrNull(spec.namespaces),
    notNamespaces: globOrNull(spec.notNamespaces),
    trustDomains: globOrNull(spec.trustDomains),
    authMethods: compileAuthMethods(spec.authMethods),
    notAuthMethods: compileAuthMethods(spec.notAuthMethods),
    claims,
    notClaims,
    description,
  };
}

function compileMariadbTarget(spec: MariadbTargetSpec, action: Action): CompiledMariadbTarget {
  const databases = globOrNull(spec.databases);
  return {
    engine: 'mysql',
    databases,
    role: spec.role ?? null,
    allowLocalInfile: spec.allowLocalInfile ?? false,
    auditParameters: spec.auditParameters ?? DEFAULT_PARAMETER_AUDIT,
    traceQueryText: spec.traceQueryText ?? null,
    direct: action === 'DENY' || spec.direct === true,
    description: databases === null ? '' : `databases ${describeGlobSet(databases)}`,
  };
}

/** `read, write on collections orders/* in databases (default)`; operations only if listed. */
export function describeFirestoreTarget(target: Pick<CompiledFirestoreTarget, 'collections' | 'databases' | 'operations'>): string {
  const on = `collections ${target.collections.map((c) => c.source).join(', ')} in databases ${describeGlobSet(target.databases)}`;
  return target.operations === null ? on : `${[...target.operations].join(', ')} on ${on}`;
}

function compileFirestoreTarget(spec: FirestoreTargetSpec, action: Action): CompiledFirestoreTarget {
  const databases = compileGlobSet(spec.databases ?? [FIRESTORE_DEFAULT_DATABASE]);
  const collections = Object.freeze(spec.collections.map(compilePathPattern));
  const operations = spec.operations === undefined ? null : new Set(spec.operations);
  return {
    engine: 'firestore',
    databases,
    collections,
    operations,
    coverage: action === 'ALLOW' ? 'every' : 'some',
    serviceAccount: spec.serviceAccount ?? null,
    traceQueryText: spec.traceQueryText ?? null,
    description: `Firestore ${describeFirestoreTarget({ collections, databases, operations })}`,
  };
}

function compileTarget(spec: TargetSpec, action: Action): CompiledTarget {
  // The schema guarantees exactly one of the two.
  return spec.firestore !== undefined ? compileFirestoreTarget(spec.firestore, action) : compileMariadbTarget(spec.mariadb ?? {}, action);
}

/** What a matched (source, target) pair covers, e.g. `DENY for namespaces staging`. */
export function describeMatch(action: Action, source: CompiledSource | null, target: CompiledTarget | null): string {
  const who = source?.description ?? 'every caller';
  const on = target === null || target.description === '' ? '' : ` on ${target.description}`;
  return `${action} for ${who}${on}`;
}

/** How an ALLOW target grants: `as role R`, or what a Firestore target allows. */
export function describeGrant(target: CompiledTarget | null): string {
  if (target?.engine === 'firestore') {
    const as = target.serviceAccount === null ? '' : ` as service account ${target.serviceAccount}`;
    return `for Firestore ${describeFirestoreTarget(target)}${as}`;
  }
  return `as role ${target?.role ?? '?'}`;
}

/** What a decided rule is, for the decisions it builds. */
interface RuleFacts {
  readonly id: string;
  readonly action: Action;
  readonly dryRun: boolean;
  readonly serviceClass: string;
  readonly policyVersion: string;
}

const DRY_RUN_NOTE = ' (action AUDIT: recorded, not enforced)';

function buildDecision(rule: RuleFacts, source: CompiledSource | null, target: CompiledTarget | null): Decision {
  const { id, action, policyVersion } = rule;
  const would = rule.dryRun ? 'would be ' : '';
  const note = rule.dryRun ? DRY_RUN_NOTE : '';
  if (action === 'DENY') {
    const reason = `${would}denied by rule ${id} (${describeMatch(action, source, target)})${note}`;
    return Object.freeze({ allow: false, ruleId: id, reason, role: null, allowLocalInfile: false, auditParameters: 'none', googleServiceAccount: null, traceQueryText: null, serviceClass: DEFAULT_SERVICE_CLASS, policyVersion });
  }
  // The schema guarantees every ALLOW target exists; a mariadb one names a role.
  const mariadb = target?.engine === 'mysql' ? target : null;
  return Object.freeze({
    allow: true,
    ruleId: id,
    reason: `${would}allowed by rule ${id} ${describeGrant(target)}${note}`,
    role: mariadb?.role ?? null,
    allowLocalInfile: mariadb?.allowLocalInfile ?? false,
    auditParameters: mariadb?.auditParameters ?? 'none',
    googleServiceAccount: target?.engine === 'firestore' ? target.serviceAccount : null,
    traceQueryText: target?.traceQueryText ?? null,
    serviceClass: rule.serviceClass,
    policyVersion,
  });
}

/**
 * `documentAction` AUDIT makes every rule a DENY in dry run; a rule's own `action: AUDIT` a
 * dry run of its document's action. `policyVersion` goes into every decision the rule makes.
 */
export function compileRule(policyName: string, documentAction: Action | 'AUDIT', spec: PolicyRuleSpec, index: number, policyVersion: string): CompiledRule {
  const id = ruleIdOf(policyName, spec, index);
  const action: Action = documentAction === 'AUDIT' ? 'DENY' : documentAction;
  const dryRun = documentAction === 'AUDIT' || spec.action === 'AUDIT';
  const sources = spec.from?.map((f) => compileSource(f.source)) ?? null;
  const targets = spec.to?.map((t) => compileTarget(t, action)) ?? null;
  const facts: RuleFacts = { id, action, dryRun, serviceClass: spec.serviceClass ?? DEFAULT_SERVICE_CLASS, policyVersion };
  const decisions = (sources ?? [null]).map((source) => Object.freeze((targets ?? [null]).map((target) => buildDecision(facts, source, target))));
  return Object.freeze({ id, action, dryRun, sources, targets, decisions: Object.freeze(decisions) });
}

export function sourceMatches(source: CompiledSource, subject: Subject): boolean {
  if (source.principals !== null && !globMatches(source.principals, subject.principal)) return false;
  if (source.notPrincipals !== null && globMatches(source.notPrincipals, subject.principal)) return false;
  // Istio treats `*` as "present", so an ID outside the ns/sa layout never matches a
  // namespaces list, yet does satisfy a notNamespaces list.
  const ns = subject.namespace;
  if (source.namespaces !== null && (ns === null || !globMatches(source.namespaces, ns))) return false;
  if (source.notNamespaces !== null && ns !== null && globMatches(source.notNamespaces, ns)) return false;
  if (source.trustDomains !== null && !globMatches(source.trustDomains, subject.trustDomain)) return false;
  if (!authMethodsHold(subject, source.authMethods, source.notAuthMethods)) return false;
  return claimsHold(subject, source.claims, source.notClaims);
}

/** Operations, then database, then path; the request must have passed firestoreRequestProblem. */
export function firestoreTargetMatches(target: CompiledFirestoreTarget, request: FirestoreRequest): boolean {
  if (target.operations !== null && !target.operations.has(request.operation)) return false;
  if (!globMatches(target.databases, request.database)) return false;
  return pathMatches(target.collections, request.path, request.pathKind, target.coverage);
}

/** A target applies only to requests of its own engine. */
export function targetMatches(target: CompiledTarget, request: PolicyRequest): boolean {
  if (target.engine === 'firestore') return request.engine === 'firestore' && firestoreTargetMatches(target, request);
  if (request.engine !== 'mysql') return false;
  if (request.direct === true && !target.direct) return false;
  return mariadbDatabaseMatches(target, request);
}

export function mariadbDatabaseMatches(target: CompiledMariadbTarget, request: MysqlRequest): boolean {
  const set = target.databases;
  if (set === null) return true;
  // A client that names no database may then `USE` any; only `*` grants that.
  return request.database === null ? set.any : globMatches(set, request.database);
}

/** Index of the first source matching the subject (0 when `from` is omitted), or -1. */
export function firstSource(rule: CompiledRule, subject: Subject): number {
  const sources = rule.sources;
  if (sources === null) return 0;
  for (let i = 0; i < sources.length; i += 1) if (sourceMatches(sources[i]!, subject)) return i;
  return -1;
}

/** Index of the first target matching the request (0 when `to` is omitted), or -1. */
export function firstTarget(rule: CompiledRule, request: PolicyRequest): number {
  const targets = rule.targets;
  if (targets === null) return 0;
  for (let i = 0; i < targets.length; i += 1) if (targetMatches(targets[i]!, request)) return i;
  return -1;
}

/** The rule's decision for this request, or null when the rule does not match. */
export function ruleDecision(rule: CompiledRule, subject: Subject, request: PolicyRequest): Decision | null {
  const s = firstSource(rule, subject);
  if (s < 0) return null;
  const t = firstTarget(rule, request);
  if (t < 0) return null;
  return rule.decisions[s]?.[t] ?? null;
}
