/** Policy as code: load, compile, evaluate, explain. */
export { loadPolicyDir, loadPolicyDocuments, PolicyParseCache, policyFileNames, readPolicyDir, type LoadPolicyDirOptions } from './loader.ts';
export { policyInventory, type InventoryFirestoreTarget, type InventoryMariadbTarget, type InventoryRule } from './inventory.ts';
export type { PolicySourceText } from './parse.ts';
export { subjectFromPrincipal } from './subject.ts';
export { callerSubject, InputProblem, policyRequest, type CallerInput, type FieldNamer, type InputField, type RequestInput } from './request-input.ts';
export { DEFAULT_DENY, loadPolicyTests, parsePolicyTestSource, type ParsedTestSource, type PolicyTestCase, type PolicyTestExpectation } from './test-file.ts';
export { runPolicyTest, runPolicyTests, type PolicyTestMismatch, type PolicyTestResult } from './test-run.ts';
export { fixedPolicy, SwappablePolicy, type PolicySource } from './source.ts';
export { judge, marksOf, type Judgement, type JudgementMarks } from './judge.ts';
export { DEFAULT_SERVICE_CLASS } from './types.ts';
export { API_VERSION, AUTH_METHODS, FIRESTORE_DEFAULT_DATABASE, FIRESTORE_OPERATIONS, KIND } from './schema.ts';
export type { PolicyDocument, PolicyRuleSpec, PolicySourceSpec } from './schema.ts';
export { globProblem } from './glob.ts';
export {
  describeFirestorePath,
  FIRESTORE_METHOD_OPERATIONS,
  firestorePathKind,
  firestoreRequestProblem,
  MAX_PATH_LENGTH as MAX_FIRESTORE_PATH_LENGTH,
  MAX_PATH_SEGMENTS as MAX_FIRESTORE_PATH_SEGMENTS,
} from './firestore-request.ts';
export { compilePathPattern, pathMatches, pathPatternProblem, type Coverage, type PathPattern } from './firestore-path.ts';
export type {
  CompiledPolicy,
  Decision,
  Explanation,
  FirestoreOperation,
  FirestorePathKind,
  FirestoreRequest,
  LoadedPolicy,
  MysqlRequest,
  ParameterAudit,
  TraceQueryText,
  PolicyFileSummary,
  PolicyRequest,
  Subject,
  TraceEntry,
} from './types.ts';
export {
  compareDecisions,
  diffPolicies,
  GRANT_ASPECTS,
  MAX_COMBINED,
  seenIdentityOf,
  type DecisionSummary,
  type DiffIdentity,
  type DiffKind,
  type DiffLine,
  type DiffOptions,
  type DiffRequest,
  type GrantAspect,
  type IdentityDiff,
  type PolicyDiff,
  type SeenIdentity,
} from './diff/index.ts';
