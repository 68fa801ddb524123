/**
 * Policy test files (`meshgate policy test`): YAML cases of a caller, a request and the
 * decision expected of the policy. Validated like policy files: strict shapes, and every
 * problem names the file, the case (index and name), the field and its line, so a failing
 * CI job points at the line to fix. Format reference: docs/policy-testing.md.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { mgError } from '../errors/index.ts';
import { describeIssue, nodeLine, type PolicySourceText } from './parse.ts';
import { callerSubject, InputProblem, policyRequest, type InputField } from './request-input.ts';
import { AUTH_METHODS, FIRESTORE_OPERATIONS, formatPath } from './schema.ts';
import type { PolicyRequest, Subject } from './types.ts';

/** Enough to see what is wrong without burying the first problem (as the policy loader). */
const MAX_REPORTED = 20;

/** What `expect.rule` may say for a denial no rule made. */
export const DEFAULT_DENY = 'default-deny';

const scalar = z.union([z.string(), z.number(), z.boolean()]);
// Claims as a verified token carries them: strings, numbers, booleans, lists (groups).
// zod's records drop a `__proto__` key without a word; a case would then test less than it says.
const claims = z.preprocess((value, ctx) => {
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
    ctx.addIssue({ code: 'custom', path: ['__proto__'], message: '"__proto__" is not a claim name', input: value });
  }
  return value;
}, z.record(z.string().min(1), z.union([scalar, z.array(scalar)])));

const callerShape = {
  principal: z.string().min(1),
  authMethod: z.enum(AUTH_METHODS).optional(),
  claims: claims.optional(),
};
const mariadbShape = {
  /** null or omitted: the client names no database at connect. */
  database: z.string().min(1).nullable().optional(),
  direct: z.boolean().optional(),
};
const firestoreShape = {
  path: z.string().min(1),
  operation: z.enum(FIRESTORE_OPERATIONS),
  database: z.string().min(1).optional(),
};
const requestShape = { mariadb: z.strictObject(mariadbShape).optional(), firestore: z.strictObject(firestoreShape).optional() };
const expectShape = {
  decision: z.enum(['ALLOW', 'DENY']),
  /** `<policy>/<rule id or index>`; null or `default-deny` when no rule decided. */
  rule: z.string().min(1).nullable().optional(),
  role: z.string().min(1).nullable().optional(),
  googleServiceAccount: z.string().min(1).nullable().optional(),
  serviceClass: z.string().min(1).optional(),
  /** The first matching dry-run (action AUDIT) rule, `<policy>/<rule id or index>`; null: none matches. */
  dryRun: z.string().min(1).nullable().optional(),
};
const caseShape = {
  name: z.string().min(1).max(200),
  caller: z.strictObject(callerShape),
  request: z.strictObject(requestShape),
  expect: z.strictObject(expectShape),
};
const fileShape = { tests: z.array(z.strictObject(caseShape)).min(1) };
const testFileSchema = z.strictObject(fileShape);
type CaseSpec = z.infer<typeof testFileSchema>['tests'][number];

const ALLOWED_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(fileShape),
  'tests[]': Object.keys(caseShape),
  'tests[].caller': Object.keys(callerShape),
  'tests[].request': Object.keys(requestShape),
  'tests[].request.mariadb': Object.keys(mariadbShape),
  'tests[].request.firestore': Object.keys(firestoreShape),
  'tests[].expect': Object.keys(expectShape),
};

/** What a case expects; a field left out is not checked. */
export interface PolicyTestExpectation {
  readonly decision: 'ALLOW' | 'DENY';
  /** null: a default deny (no rule decided). */
  readonly rule?: string | null;
  readonly role?: string | null;
  readonly googleServiceAccount?: string | null;
  readonly serviceClass?: string;
  /** The dry-run (AUDIT) rule that would decide; null: no dry-run rule matches. */
  readonly dryRun?: string | null;
}

export interface PolicyTestCase {
  readonly file: string;
  /** 0-based position in the file's `tests` list. */
  readonly index: number;
  readonly line: number | null;
  readonly name: string;
  readonly subject: Subject;
  readonly request: PolicyRequest;
  readonly expect: PolicyTestExpectation;
}

export interface ParsedTestSource {
  readonly cases: PolicyTestCase[];
  readonly problems: string[];
}

type Path = readonly PropertyKey[];

/** `file: tests[2] "name": expect.rule: message (line 14)`; the case part only under tests[]. */
function problemText(file: string, path: Path, name: string | undefined, message: string, line: number | null): string {
  const inCase = path[0] === 'tests' && typeof path[1] === 'number';
  const where = inCase ? ` tests[${String(path[1])}]${name === undefined ? '' : ` ${JSON.stringify(name)}`}:` : '';
  const rest = inCase ? path.slice(2) : path;
  const field = rest.length === 0 ? '' : `${formatPath(rest)}: `;
  return `${file}:${where} ${field}${message}${line === null ? '' : ` (line ${line})`}`;
}

/** Where each shared input lives in a case. */
const FIELD_PATH: Readonly<Record<InputField, readonly string[]>> = {
  principal: ['caller', 'principal'],
  authMethod: ['caller', 'authMethod'],
  claims: ['caller', 'claims'],
  database: ['request', 'mariadb', 'database'],
  direct: ['request', 'mariadb', 'direct'],
  firestorePath: ['request', 'firestore', 'path'],
  operation: ['request', 'firestore', 'operation'],
  firestoreDatabase: ['request', 'firestore', 'database'],
};

/** Cross-field rules zod's shapes do not say, as [path within the case, message]. */
function expectationProblems(spec: CaseSpec): [Path, string][] {
  const problems: [Path, string][] = [];
  const { request, expect } = spec;
  if ((request.mariadb === undefined) === (request.firestore === undefined)) {
    const message = request.mariadb === undefined ? 'names no request: give mariadb or firestore' : 'names both mariadb and firestore: one case asks one thing';
    problems.push([['request'], message]);
  }
  const rule = expect.rule === DEFAULT_DENY ? null : expect.rule;
  if (expect.decision === 'ALLOW' && rule === null) problems.push([['expect', 'rule'], 'an ALLOW is always decided by a rule; name it (<policy>/<rule id or index>)']);
  if (expect.decision === 'DENY' && expect.role != null) problems.push([['expect', 'role'], 'a DENY has no role; leave it out or write null']);
  if (expect.decision === 'DENY' && expect.googleServiceAccount != null) {
    problems.push([['expect', 'googleServiceAccount'], 'a DENY has no service account; leave it out or write null']);
  }
  if (request.firestore !== undefined && expect.role != null) {
    problems.push([['expect', 'role'], 'a Firestore request is granted a Google service account, not a MariaDB role: expect googleServiceAccount']);
  }
  if (request.mariadb !== undefined && expect.googleServiceAccount != null) {
    problems.push([['expect', 'googleServiceAccount'], 'a MariaDB request is granted a role, not a Google service account: expect role']);
  }
  return problems;
}

function expectationOf(spec: CaseSpec['expect']): PolicyTestExpectation {
  const { decision, rule, role, googleServiceAccount, serviceClass, dryRun } = spec;
  return {
    decision,
    ...(rule === undefined ? {} : { rule: rule === DEFAULT_DENY ? null : rule }),
    ...(role === undefined ? {} : { role }),
    ...(googleServiceAccount === undefined ? {} : { googleServiceAccount }),
    ...(serviceClass === undefined ? {} : { serviceClass }),
    ...(dryRun === undefined ? {} : { dryRun }),
  };
}

/** One test file's text → cases, or problems naming file, case, field and line. */
export function parsePolicyTestSource(source: PolicySourceText): ParsedTestSource {
  const lineCounter = new LineCounter();
  const problems: string[] = [];
  const docs = parseAllDocuments(source.text, { lineCounter, prettyErrors: true });
  const yamlDocs = Array.isArray(docs) ? docs : [];
  for (const doc of yamlDocs) {
    for (const error of doc.errors) problems.push(`${source.name}: YAML syntax error: ${(error.message.split('\n')[0] ?? '').replace(/:$/, '')}`);
  }
  if (problems.length > 0) return { cases: [], problems };
  const nonEmpty = yamlDocs.filter((d) => d.contents !== null);
  if (nonEmpty.length !== 1) {
    const message = nonEmpty.length === 0 ? 'holds no test cases; write a `tests:` list of cases' : 'holds several YAML documents; put every case in one `tests:` list';
    return { cases: [], problems: [`${source.name}: ${message}`] };
  }
  const doc = nonEmpty[0]!;
  const lineOf = (path: Path): number | null => nodeLine(doc, lineCounter, path);
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (error) {
    return { cases: [], problems: [`${source.name}: ${(error as Error).message}`] };
  }
  const nameAt = (index: unknown): string | undefined => {
    const tests = (value as { tests?: unknown } | null)?.tests;
    const item = Array.isArray(tests) && typeof index === 'number' ? (tests[index] as { name?: unknown } | undefined) : undefined;
    return typeof item?.name === 'string' ? item.name : undefined;
  };
  const result = testFileSchema.safeParse(value, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      for (const { path, message } of describeIssue(issue, ALLOWED_KEYS)) {
        problems.push(problemText(source.name, path, nameAt(path[1]), message, lineOf(path)));
      }
    }
    return { cases: [], problems };
  }
  const cases: PolicyTestCase[] = [];
  result.data.tests.forEach((spec, index) => {
    const at = (path: Path): Path => ['tests', index, ...path];
    const report = (path: Path, message: string, withField = true): void => {
      problems.push(problemText(source.name, withField ? at(path) : at([]), spec.name, message, lineOf(at(path))));
    };
    const semantic = expectationProblems(spec);
    for (const [path, message] of semantic) report(path, message);
    if (semantic.length > 0) return;
    const name = (field: InputField): string => formatPath(FIELD_PATH[field]);
    try {
      const subject = callerSubject(spec.caller, name);
      const { mariadb, firestore: fs } = spec.request;
      const request = policyRequest(
        fs === undefined ? { database: mariadb?.database ?? null, direct: mariadb?.direct } : { firestorePath: fs.path, operation: fs.operation, firestoreDatabase: fs.database },
        name,
      );
      cases.push({ file: source.name, index, line: lineOf(at([])), name: spec.name, subject, request, expect: expectationOf(spec.expect) });
    } catch (error) {
      if (!(error instanceof InputProblem)) throw error;
      // The message already names its field, the front end's way.
      report(FIELD_PATH[error.field], error.message, false);
    }
  });
  return { cases, problems };
}

/**
 * Every file's cases, in the order given; any problem in any file (a name used twice
 * included: reports would not tell the cases apart) fails the whole set.
 */
export function loadPolicyTests(sources: readonly PolicySourceText[]): PolicyTestCase[] {
  const problems: string[] = [];
  const cases: PolicyTestCase[] = [];
  const seen = new Map<string, PolicyTestCase>();
  for (const source of sources) {
    const parsed = parsePolicyTestSource(source);
    problems.push(...parsed.problems);
    for (const testCase of parsed.cases) {
      const first = seen.get(testCase.name);
      if (first !== undefined) {
        const firstAt = `${first.file} tests[${first.index}]${first.line === null ? '' : ` (line ${first.line})`}`;
        problems.push(problemText(testCase.file, ['tests', testCase.index, 'name'], testCase.name, `already used by ${firstAt}; case names must be unique`, testCase.line));
        continue;
      }
      seen.set(testCase.name, testCase);
      cases.push(testCase);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED);
    const more = problems.length > shown.length ? [`... and ${problems.length - shown.length} more`] : [];
    throw mgError('MG_POLICY_TEST_INVALID', problems.length === 1 ? shown[0]! : [`${problems.length} problems in the policy tests:`, ...shown, ...more].join('\n  '));
  }
  if (cases.length === 0) throw mgError('MG_POLICY_TEST_INVALID', 'no policy test cases were given; a CI step that tests nothing should not pass');
  return cases;
}
