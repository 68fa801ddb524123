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
import { parsePolicySource, problemText, where, type ParsedDocument, type ParsedSource, type PolicySourceText } from './parse.ts';
import type { LoadedPolicy, PolicyFileSummary } from './types.ts';

/** Enough to see what is wrong without burying the first problem. */
const MAX_REPORTED = 20;

export interface LoadPolicyDirOptions {
  /** Directory `dir` is resolved against (the CLI's cwd); messages keep `dir` as given. */
  readonly cwd?: string;
  /** Keeps each file's parsed documents between loads: a reload parses only the files that changed. */
  readonly cache?: PolicyParseCache;
  /**
   * The policy's version in logs, metrics and audit events, instead of the digest of its
   * texts: the commit id when the directory comes from git (src/policy-git).
   */
  readonly version?: string;
}

/**
 * Parsed and validated documents by file, for reloads. Parsing YAML is most of a load's cost
 * (about 1 ms per 10 rules with the yaml package), compiling a small part; a GitOps change
 * touches a few files, so a reload of a large policy costs its changed files plus a compile.
 * Holds the files of the last load only.
 */
export class PolicyParseCache {
  #entries = new Map<string, { readonly text: string; readonly parsed: ParsedSource }>();

  /** The file's documents and problems, parsed now only if its name or text changed. */
  parse(source: PolicySourceText): { parsed: ParsedSource; fresh: boolean } {
    const entry = this.#entries.get(source.name);
    if (entry !== undefined && entry.text === source.text) return { parsed: entry.parsed, fresh: false };
    const parsed = parsePolicySource(source);
    this.#entries.set(source.name, { text: source.text, parsed });
    return { parsed, fresh: true };
  }

  /** Forgets files that are no longer in the directory. */
  retain(names: ReadonlySet<string>): void {
    for (const name of this.#entries.keys()) if (!names.has(name)) this.#entries.delete(name);
  }
}

/**
 * Of a directory's entries, the policy files the loader reads, in load order. Code-unit
 * order, not locale order, so every machine loads files in the same order. Dot-files are
 * skipped: Kubernetes ConfigMap mounts hold `..data` links beside the files. The watch and
 * `policy init` use this too, so they see exactly the files a load reads.
 */
export function policyFileNames(names: readonly string[]): string[] {
  return names.filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Lets the event loop run between files, so a relaying session waits for one file's parse at most. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function loadPolicyDir(dir: string, options: LoadPolicyDirOptions = {}): Promise<LoadedPolicy> {
  const sources = await readPolicyDir(dir, options);
  // Parsed a file at a time with a turn of the event loop between (a cold load of a large
  // policy would otherwise hold every session for its whole parse).
  const cache = options.cache ?? new PolicyParseCache();
  const parsed: ParsedSource[] = [];
  for (const source of sources) {
    const result = cache.parse(source);
    parsed.push(result.parsed);
    if (result.fresh) await nextTurn();
  }
  cache.retain(new Set(sources.map((source) => source.name)));
  return compileParsed(sources, parsed, dir, options.version);
}

/** The policy files of `dir` in load order, read but not validated (loadPolicyDocuments does that). */
export async function readPolicyDir(dir: string, options: LoadPolicyDirOptions = {}): Promise<PolicySourceText[]> {
  const absolute = resolve(options.cwd ?? process.cwd(), dir);
  let names: string[];
  try {
    names = await readdir(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw mgError('MG_POLICY_INVALID', `cannot read policy directory ${dir} (${code})`, error);
  }
  const candidates = policyFileNames(names);
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
  return sources;
}

/**
 * Validates and compiles already-read files, in the order given (callers sort). `label`
 * names the whole set in the empty-policy error; `version` defaults to a digest of the texts.
 */
export function loadPolicyDocuments(sources: readonly PolicySourceText[], label = 'the policy sources', version?: string): LoadedPolicy {
  return compileParsed(sources, sources.map(parsePolicySource), label, version);
}

function compileParsed(sources: readonly PolicySourceText[], parsedSources: readonly ParsedSource[], label: string, version?: string): LoadedPolicy {
  const problems: string[] = [];
  const documents: ParsedDocument[] = [];
  const files: PolicyFileSummary[] = [];
  for (const [i, source] of sources.entries()) {
    const parsed = parsedSources[i]!;
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
