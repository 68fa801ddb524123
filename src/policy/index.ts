export { loadPolicyDir, loadPolicyDocuments, type LoadPolicyDirOptions } from './loader.ts';
export type { PolicySourceText } from './parse.ts';
export { subjectFromPrincipal } from './subject.ts';
export { API_VERSION, KIND } from './schema.ts';
export type {
  CompiledPolicy,
  Decision,
  Explanation,
  LoadedPolicy,
  MysqlRequest,
  PolicyFileSummary,
  PolicyRequest,
  Subject,
  TraceEntry,
} from './types.ts';
