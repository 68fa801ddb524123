/**
 * The AccessPolicy document schema. zod checks shape (strict objects, so a misspelt or
 * mis-indented key fails instead of silently widening a rule); `checkSemantics` checks what
 * depends on more than one field, such as roles being required only on ALLOW rules.
 */
import { z } from 'zod';
import { pathPatternProblem } from './firestore-path.ts';
import { globProblem } from './glob.ts';
import { PARAMETER_AUDIT_MODES, TRACE_QUERY_TEXT_MODES } from './types.ts';

export const API_VERSION = 'meshgate.dev/v1alpha1';
export const KIND = 'AccessPolicy';

// Kubernetes object-name rules, so a policy can live in a ConfigMap under the same name.
const POLICY_NAME = /^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$/;
const RULE_ID = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
// Unquoted MariaDB identifier characters; meshgate quotes roles, but a backtick could still
// break out of the quoting, so anything outside this set is refused at load.
const ROLE = /^[A-Za-z0-9_$]{1,64}$/;
// A Google service account email: `name@project.iam.gserviceaccount.com`, and the older
// `project@appspot.gserviceaccount.com` / `n-compute@developer.gserviceaccount.com` forms.
const GOOGLE_SERVICE_ACCOUNT = /^[a-z0-9](?:[-a-z0-9_.]{0,98}[a-z0-9])?@[a-z0-9](?:[-a-z0-9.:]{0,250}[a-z0-9])?\.gserviceaccount\.com$/;

const pattern = z.string().superRefine((value, ctx) => {
  const problem = globProblem(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});
const patternList = z.array(pattern).min(1);

/** How a caller can prove its identity; mirrors Identity['authMethod']. */
export const AUTH_METHODS = ['mtls', 'jwt', 'xfcc'] as const;
const authMethodList = z.array(z.enum(AUTH_METHODS)).min(1);

// Token claim names as issuers spell them (`repository_owner`, `email`, `groups`), plus "."
// for one nested level and ":" for namespaced names.
const CLAIM_NAME = /^[A-Za-z0-9_.:-]+$/;
const claimName = z.string().regex(CLAIM_NAME, 'is not a claim name: use letters, digits, "_", ".", ":" or "-"');
const claimRecord = z.record(claimName, patternList).superRefine((map, ctx) => {
  if (Object.keys(map).length === 0) ctx.addIssue({ code: 'custom', message: 'must not be empty; omit the field to match anything' });
});
// zod's records silently drop a `__proto__` key, which would delete that condition and
// widen the rule; so it is refused before the record sees it.
const claimMap = z.preprocess((value, ctx) => {
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
    ctx.addIssue({ code: 'custom', path: ['__proto__'], message: '"__proto__" is not a claim name', input: value });
  }
  return value;
}, claimRecord);

const sourceShape = {
  principals: patternList.optional(),
  notPrincipals: patternList.optional(),
  namespaces: patternList.optional(),
  notNamespaces: patternList.optional(),
  trustDomains: patternList.optional(),
  authMethods: authMethodList.optional(),
  notAuthMethods: authMethodList.optional(),
  claims: claimMap.optional(),
  notClaims: claimMap.optional(),
};
const fromShape = { source: z.strictObject(sourceShape) };

const mariadbShape = {
  databases: patternList.optional(),
  role: z.string().regex(ROLE, 'must be a MariaDB role name: 1-64 of A-Z a-z 0-9 _ $').optional(),
  allowLocalInfile: z.boolean().optional(),
  /**
   * Also grants direct credentials (`creds issue`, `POST /v1/creds`): a MariaDB account the
   * caller uses without meshgate, so meshgate sees none of its statements. Default false.
   */
  direct: z.boolean().optional(),
  /**
   * What the audit keeps of prepared statement parameters at each execute: `none`, `types`
   * (default: each parameter's type and length) or `values` (the values, long ones cut).
   */
  auditParameters: z.enum(PARAMETER_AUDIT_MODES).optional(),
  /** What this caller's spans show of its statements; absent: `tracing.queryText` decides. */
  traceQueryText: z.enum(TRACE_QUERY_TEXT_MODES).optional(),
};

/** Firestore operation classes; mirrors FirestoreOperation. */
export const FIRESTORE_OPERATIONS = ['read', 'write', 'admin'] as const;
/** What `databases` means when a firestore target omits it. */
export const FIRESTORE_DEFAULT_DATABASE = '(default)';

const collectionPattern = z.string().superRefine((value, ctx) => {
  const problem = pathPatternProblem(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});
const firestoreShape = {
  databases: patternList.optional(),
  collections: z.array(collectionPattern).min(1),
  operations: z.array(z.enum(FIRESTORE_OPERATIONS)).min(1).optional(),
  serviceAccount: z
    .string()
    .regex(GOOGLE_SERVICE_ACCOUNT, 'must be a Google service account email, e.g. orders@my-project.iam.gserviceaccount.com')
    .optional(),
  /** What this caller's spans show of its document paths; absent: `tracing.queryText` decides. */
  traceQueryText: z.enum(TRACE_QUERY_TEXT_MODES).optional(),
};
const toShape = { mariadb: z.strictObject(mariadbShape).optional(), firestore: z.strictObject(firestoreShape).optional() };

const ruleShape = {
  id: z
    .string()
    .max(63)
    .regex(RULE_ID, 'must be letters, digits, "-", "_" or ".", starting and ending with a letter or digit')
    .optional(),
  from: z.array(z.strictObject(fromShape)).min(1).optional(),
  to: z.array(z.strictObject(toShape)).min(1).optional(),
  /** The service class (config `throttle.classes`) the callers this rule allows are limited by; absent: the default class. */
  serviceClass: z
    .string()
    .max(63)
    .regex(RULE_ID, 'must be a service class name from the configuration (throttle.classes), e.g. batch')
    .optional(),
  /**
   * `AUDIT`: a dry run of this rule. It is matched as its document's action would match it,
   * and what it would have decided is recorded in the audit and metrics, never enforced.
   */
  action: z.literal('AUDIT').optional(),
};

/**
 * `AUDIT` (as in Istio): every rule of the document is a DENY in dry run, recorded where it
 * matches and never enforced, so a new DENY can be watched before it is switched on.
 */
export const DOCUMENT_ACTIONS = ['ALLOW', 'DENY', 'AUDIT'] as const;

const specShape = {
  action: z.enum(DOCUMENT_ACTIONS),
  rules: z.array(z.strictObject(ruleShape)).min(1),
};
const metadataShape = {
  name: z.string().max(253).regex(POLICY_NAME, 'must be lower-case letters, digits, "-" or ".", like a Kubernetes object name'),
};
const documentShape = {
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: z.strictObject(metadataShape),
  spec: z.strictObject(specShape),
};

export const policyDocumentSchema = z.strictObject(documentShape);
export type PolicyDocument = z.infer<typeof policyDocumentSchema>;
export type PolicyRuleSpec = PolicyDocument['spec']['rules'][number];
export type PolicySourceSpec = NonNullable<PolicyRuleSpec['from']>[number]['source'];
export type TargetSpec = NonNullable<PolicyRuleSpec['to']>[number];
export type MariadbTargetSpec = NonNullable<TargetSpec['mariadb']>;
export type FirestoreTargetSpec = NonNullable<TargetSpec['firestore']>;

/**
 * The keys each object accepts, by path with indices as `[]`, so an unknown-key error can
 * say what was meant. Derived from the shapes above so the two cannot drift.
 */
export const ALLOWED_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(documentShape),
  metadata: Object.keys(metadataShape),
  spec: Object.keys(specShape),
  'spec.rules[]': Object.keys(ruleShape),
  'spec.rules[].from[]': Object.keys(fromShape),
  'spec.rules[].from[].source': Object.keys(sourceShape),
  'spec.rules[].to[]': Object.keys(toShape),
  'spec.rules[].to[].mariadb': Object.keys(mariadbShape),
  'spec.rules[].to[].firestore': Object.keys(firestoreShape),
};

export interface SemanticProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Rules that zod's per-field checks cannot express. */
export function checkSemantics(doc: PolicyDocument): SemanticProblem[] {
  const problems: SemanticProblem[] = [];
  const allow = doc.spec.action === 'ALLOW';
  doc.spec.rules.forEach((rule, r) => {
    const at = ['spec', 'rules', r];
    if (!allow && rule.serviceClass !== undefined) {
      problems.push({ path: [...at, 'serviceClass'], message: 'not allowed on DENY rules: a denied caller is not admitted to any class' });
    }
    rule.from?.forEach((item, f) => {
      const source = item.source;
      if (Object.keys(source).length === 0) {
        problems.push({
          path: [...at, 'from', f, 'source'],
          message: 'names no field and would match every caller; omit `from` to mean that',
        });
      }
      // Only token (jwt) identities carry claims, so such a source could never match: an
      // ALLOW that never grants, or worse, a DENY that never denies.
      const noJwt =
        (source.authMethods !== undefined && !source.authMethods.includes('jwt')) || source.notAuthMethods?.includes('jwt') === true;
      if (source.claims !== undefined && noJwt) {
        problems.push({
          path: [...at, 'from', f, 'source', 'claims'],
          message: 'only jwt identities carry claims, and this source excludes the jwt auth method, so it could never match',
        });
      }
    });
    if (allow && rule.to === undefined) {
      problems.push({
        path: [...at, 'to'],
        message: 'required for ALLOW rules: it names what is granted (mariadb databases and role, or firestore collections and operations)',
      });
    }
    const grantsNothing = 'not allowed on DENY rules: a DENY rule grants nothing';
    rule.to?.forEach((item, t) => {
      const { mariadb, firestore } = item;
      if ((mariadb === undefined) === (firestore === undefined)) {
        const message =
          mariadb === undefined
            ? 'names no target: give mariadb or firestore'
            : 'names both mariadb and firestore: use one to[] item for each';
        problems.push({ path: [...at, 'to', t], message });
      }
      if (mariadb !== undefined) {
        const target = [...at, 'to', t, 'mariadb'];
        if (allow && mariadb.role === undefined) problems.push({ path: [...target, 'role'], message: 'required for ALLOW rules' });
        if (!allow && mariadb.role !== undefined) problems.push({ path: [...target, 'role'], message: grantsNothing });
        if (!allow && mariadb.allowLocalInfile !== undefined) {
          problems.push({ path: [...target, 'allowLocalInfile'], message: grantsNothing });
        }
        if (!allow && mariadb.auditParameters !== undefined) {
          problems.push({ path: [...target, 'auditParameters'], message: grantsNothing });
        }
        if (!allow && mariadb.traceQueryText !== undefined) {
          problems.push({ path: [...target, 'traceQueryText'], message: grantsNothing });
        }
        if (!allow && mariadb.direct !== undefined) {
          problems.push({ path: [...target, 'direct'], message: 'not allowed on DENY rules: a DENY rule refuses sessions and direct credentials alike' });
        }
      }
      if (firestore !== undefined) {
        const target = [...at, 'to', t, 'firestore'];
        if (allow && firestore.operations === undefined) {
          problems.push({ path: [...target, 'operations'], message: 'required for ALLOW rules: list read, write and/or admin' });
        }
        if (!allow && firestore.serviceAccount !== undefined) problems.push({ path: [...target, 'serviceAccount'], message: grantsNothing });
        if (!allow && firestore.traceQueryText !== undefined) problems.push({ path: [...target, 'traceQueryText'], message: grantsNothing });
      }
    });
  });
  return problems;
}

/** `['spec','rules',0,'to']` → `spec.rules[0].to`, the form every error message uses. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
