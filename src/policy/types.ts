import type { CompiledRule } from './match.ts';
import type { PolicyDocument } from './schema.ts';

/** The facts about a caller that policy can match on (an Identity satisfies this). */
export interface Subject {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
  /** Istio principal form: `<trust-domain>/ns/<ns>/sa/<sa>`. */
  readonly principal: string;
  /**
   * How the caller proved its identity (`mtls`, `jwt`, `xfcc`); absent only for subjects
   * built outside the proxy, which then never match an `authMethods` list.
   */
  readonly authMethod?: string;
  /** Verified token claims (JWT identities only); absent claims never match `claims`. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** What the caller asks for, one variant per engine. */
export interface MysqlRequest {
  readonly engine: 'mysql';
  /** The database named at connect or by `USE`; null when none was named. */
  readonly database: string | null;
  /**
   * Credentials for a direct connection (`creds issue`, `POST /v1/creds`) rather than a
   * session through meshgate: only ALLOW targets with `direct: true` match it; DENY rules do.
   */
  readonly direct?: boolean;
}

/**
 * Operation classes: read (get, list, query, aggregate, listen), write (create, update,
 * delete), admin (list collection ids, partition).
 */
export type FirestoreOperation = 'read' | 'write' | 'admin';

/** See FirestoreRequest.path. */
export type FirestorePathKind = 'document' | 'collection' | 'collection-group' | 'subtree';

/**
 * One path of one Firestore RPC (a BatchGet of 100 documents is 100 requests). Matching
 * rules are in firestore-path.ts and docs/policy-firestore.md.
 */
export interface FirestoreRequest {
  readonly engine: 'firestore';
  /** Firestore database id: `(default)` or a named database such as `orders-db`. */
  readonly database: string;
  /**
   * Path inside the database, relative to `projects/P/databases/D/documents`, no leading
   * "/": a document `orders/o1` (even segment count; `""` is the database root), a
   * collection `orders/o1/items` (odd), a collection group `orders/o1/**\/items`
   * (`**\/items` at the root) for a query with allDescendants, or a subtree `orders/o1/**`
   * (`**` for the whole database): every document beneath, any collection at any depth, for
   * a query or listing that names no collection (`\/` is `/`: this is a comment).
   */
  readonly path: string;
  readonly pathKind: FirestorePathKind;
  readonly operation: FirestoreOperation;
}

export type PolicyRequest = MysqlRequest | FirestoreRequest;

export interface Decision {
  readonly allow: boolean;
  /** `<policy name>/<rule id or index>` of the rule that decided, or null for default deny. */
  readonly ruleId: string | null;
  /** One sentence a user can act on: which rule denied, or that nothing matched. */
  readonly reason: string;
  /** The MariaDB role whose account meshgate connects upstream as (MariaDB allow only). */
  readonly role: string | null;
  /** Whether LOAD DATA LOCAL INFILE may pass (MariaDB allow only; false by default). */
  readonly allowLocalInfile: boolean;
  /**
   * What the audit keeps of a prepared statement's parameters at each execute (MariaDB allow
   * only): `types` by default, `values` when the rule says so, `none` for denials.
   */
  readonly auditParameters: ParameterAudit;
  /**
   * The Google service account meshgate impersonates upstream for this caller (Firestore
   * allow only, when the target names one); null otherwise.
   */
  readonly googleServiceAccount: string | null;
  /**
   * How much statement text (MariaDB) or document path (Firestore) this caller's spans may
   * show, where the allowing target says (`traceQueryText`); null: the `tracing.queryText`
   * of the configuration decides.
   */
  readonly traceQueryText: TraceQueryText | null;
  /**
   * The service class the throttle stage limits the caller by. Every decision is in the
   * `default` class until rules can name one.
   */
  readonly serviceClass: string;
  /** The version of the policy that decided (LoadedPolicy.version): its digest, or its git commit. */
  readonly policyVersion: string;
}

/** How much of each prepared statement parameter the audit keeps. */
export type ParameterAudit = 'none' | 'types' | 'values';
export const PARAMETER_AUDIT_MODES = ['none', 'types', 'values'] as const;
/** What an ALLOW rule that says nothing keeps: the shape of the call, no data. */
export const DEFAULT_PARAMETER_AUDIT: ParameterAudit = 'types';

/**
 * What a span may show of a statement or path: `sanitized` (literals and document ids as `?`),
 * `full`, or `none`. Policy can only choose per rule what the configuration sets for all.
 */
export type TraceQueryText = 'sanitized' | 'full' | 'none';
export const TRACE_QUERY_TEXT_MODES = ['sanitized', 'full', 'none'] as const;

/** The class of every caller no rule puts elsewhere. */
export const DEFAULT_SERVICE_CLASS = 'default';

export interface Explanation extends Decision {
  /** Every rule considered, in evaluation order, with whether it matched and why not; dry runs (AUDIT) last. */
  readonly trace: readonly { readonly ruleId: string; readonly action: 'ALLOW' | 'DENY' | 'AUDIT'; readonly matched: boolean; readonly why: string }[];
  /** What the first matching dry-run rule would have decided (CompiledPolicy.dryRun). */
  readonly dryRun: Decision | null;
}

export interface CompiledPolicy {
  /** The decision enforced: dry-run (AUDIT) rules take no part. */
  evaluate(subject: Subject, request: PolicyRequest): Decision;
  /**
   * What the first matching dry-run rule (`action: AUDIT`) would have decided, DENY dry runs
   * before ALLOW ones as in enforcement; null when none matches. Never enforced: engines
   * record it beside the decision that was.
   */
  dryRun(subject: Subject, request: PolicyRequest): Decision | null;
  /** Whether any rule is a dry run, so engines skip dryRun() when none is. */
  readonly hasDryRuns: boolean;
  /** The version decisions carry (LoadedPolicy.version, or `unversioned`). */
  readonly version: string;
  explain(subject: Subject, request: PolicyRequest): Explanation;
  readonly ruleCount: number;
  /** The service classes its ALLOW rules name (`default` for those that name none). */
  readonly serviceClasses: readonly string[];
  /** Files the policy was loaded from, for logs and `policy validate`. */
  readonly sources: readonly string[];
}

/** One entry of an Explanation's trace. */
export type TraceEntry = Explanation['trace'][number];

/** What `policy validate` reports per file. */
export interface PolicyFileSummary {
  readonly name: string;
  readonly documents: number;
  readonly rules: number;
}

/** A CompiledPolicy that also says what it was loaded from. */
export interface LoadedPolicy extends CompiledPolicy {
  readonly files: readonly PolicyFileSummary[];
  /** The validated documents in load order, for what renders the policy into another form (Istio resources). */
  readonly documents: readonly PolicyDocument[];
  /**
   * Every compiled rule in file order, for analyses that must know what a policy names
   * rather than only what it decides (`policy diff` picks the callers and requests to try).
   */
  readonly rules: readonly CompiledRule[];
  /**
   * The first 12 hex digits of a SHA-256 over the files' names and texts (changes when the
   * policy does), or what the loader was told (a git commit id).
   */
  readonly version: string;
}
