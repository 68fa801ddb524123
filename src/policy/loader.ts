/**
 * Loading a policy directory: read *.yaml/*.yml in sorted name order, validate every
 * document, check names and rule ids are unique across the directory, compile. Any problem
 * fails the whole load: serving with half a policy would deny or allow the wrong callers.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { mgError } from '../errors/index.ts';
import { compilePolicy } from './compile.ts';
import { ruleIdOf } from './match.ts';
import { parsePolicySource, problemText, where, type ParsedDocument, type PolicySourceText } from './parse.ts';
import type { LoadedPolicy, PolicyFileSummary } from './types.ts';

/** Enough to see what is wrong without burying the first problem. */
const MAX_REPORTED = 20;

export interface LoadPolicyDirOptions {
  /** Directory `dir` is resolved against (the CLI's cwd); messages keep `dir` as given. */
  readonly cwd?: string;
  /**
   * The policy's version in logs, metrics and audit events, instead of the digest of its
   * texts: the commit id when the directory comes from git (src/policy-git).
   */
  readonly version?: string;
}

export async function loadPolicyDir(dir: string, options: LoadPolicyDirOptions = {}): Promise<LoadedPolicy> {
  const absolute = resolve(options.cwd ?? process.cwd(), dir);
  let names: string[];
  try {
    names = await readdir(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw mgError('MG_POLICY_INVALID', `cannot read policy directory ${dir} (${code})`, error);
  }
  // Code-unit order, not locale order, so every machine loads files in the same order.
  // Dot-files are skipped: Kubernetes ConfigMap mounts hold `..data` links beside the files.
  const candidates = names.filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sources: PolicySourceText[] = [];
  for (const name of candidates) {
    const path = join(absolute, name);
    try {
      if (!(await stat(path)).isFile()) continue;
      sources.push({ name: join(dir, name), text: await readFile(path, 'utf8') });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw mgError('MG_POLICY_INVALID', `cannot read policy file ${join(dir, name)} (${code})`, error);
    }
  }
  return loadPolicyDocuments(sources, dir, options.version);
}

/**
 * Validates and compiles already-read files, in the order given (callers sort). `label`
 * names the whole set in the empty-policy error; `version` defaults to a digest of the texts.
 */
export function loadPolicyDocuments(sources: readonly PolicySourceText[], label = 'the policy sources', version?: string): LoadedPolicy {
  const problems: string[] = [];
  const documents: ParsedDocument[] = [];
  const files: PolicyFileSummary[] = [];
  for (const source of sources) {
    const parsed = parsePolicySource(source);
    problems.push(...parsed.problems);
    documents.push(...parsed.documents);
    const rules = parsed.documents.reduce((n, d) => n + d.doc.spec.rules.length, 0);
    files.push({ name: source.name, documents: parsed.documents.length, rules });
  }
  problems.push(...duplicateProblems(documents));
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED);
    const more = problems.length > shown.length ? [`... and ${problems.length - shown.length} more`] : [];
    const message =
      problems.length === 1 ? shown[0]! : [`${problems.length} problems in the policy:`, ...shown, ...more].join('\n  ');
    throw mgError('MG_POLICY_INVALID', message);
  }
  if (documents.length === 0) {
    throw mgError('MG_POLICY_INVALID', `no policy documents in ${label}; nothing would be allowed`);
  }
  return compilePolicy(documents, files, version ?? policyVersion(sources));
}

/** Names and rule ids end up in audit events and reasons; two rules sharing one lie. */
function duplicateProblems(documents: readonly ParsedDocument[]): string[] {
  const problems: string[] = [];
  const names = new Map<string, ParsedDocument>();
  const ruleIds = new Map<string, string>();
  for (const parsed of documents) {
    const { doc, file, docIndex } = parsed;
    const name = doc.metadata.name;
    const first = names.get(name);
    if (first !== undefined) {
      const path = ['metadata', 'name'];
      const message = `"${name}" is already used by ${where(first.file, first.docIndex)}; policy names must be unique`;
      problems.push(problemText(file, docIndex, path, message, parsed.lineOf(path)));
      continue;
    }
    names.set(name, parsed);
    doc.spec.rules.forEach((rule, index) => {
      const id = ruleIdOf(name, rule, index);
      const path = ['spec', 'rules', index, ...(rule.id === undefined ? [] : ['id'])];
      const here = `${where(file, docIndex)} spec.rules[${index}]`;
      const previous = ruleIds.get(id);
      if (previous !== undefined) {
        const message = `rule id "${id}" is already used by ${previous}; rule ids must be unique`;
        problems.push(problemText(file, docIndex, path, message, parsed.lineOf(path)));
      } else {
        ruleIds.set(id, here);
      }
    });
  }
  return problems;
}

/** Names (without their directory, which differs between machines) and texts, in load order. */
function policyVersion(sources: readonly PolicySourceText[]): string {
  const hash = createHash('sha256');
  for (const source of sources) hash.update(`${basename(source.name)}\0${source.text}\0`);
  return hash.digest('hex').slice(0, 12);
}
