/**
 * One policy file's text → validated documents, or problems that each name the file, the
 * document, the YAML path of the field and its line, so an operator can fix a file without
 * guessing which of several `---` documents is meant.
 */
import { LineCounter, isMap, isNode, isScalar, parseAllDocuments, type Document } from 'yaml';
import type { z } from 'zod';
import { ALLOWED_KEYS, checkSemantics, formatPath, policyDocumentSchema, type PolicyDocument } from './schema.ts';

export interface PolicySourceText {
  /** How messages name the file, e.g. `policy/orders.yaml`. */
  readonly name: string;
  readonly text: string;
}

export interface ParsedDocument {
  readonly file: string;
  /** 1-based position among the file's `---` documents, empty ones included. */
  readonly docIndex: number;
  readonly doc: PolicyDocument;
  /** Line of a path inside this document, for cross-document problems (duplicates). */
  lineOf(path: readonly (string | number)[]): number | null;
}

export interface ParsedSource {
  readonly documents: ParsedDocument[];
  readonly problems: string[];
}

export function where(file: string, docIndex: number): string {
  return `${file} doc ${docIndex}`;
}

export function problemText(file: string, docIndex: number, path: readonly PropertyKey[], message: string, line: number | null): string {
  const field = path.length === 0 ? '' : `${formatPath(path)}: `;
  return `${where(file, docIndex)}: ${field}${message}${line === null ? '' : ` (line ${line})`}`;
}

export function parsePolicySource(source: PolicySourceText): ParsedSource {
  const lineCounter = new LineCounter();
  const documents: ParsedDocument[] = [];
  const problems: string[] = [];
  const yamlDocs = parseAllDocuments(source.text, { lineCounter, prettyErrors: true });
  let docIndex = 0;
  for (const yamlDoc of yamlDocs) {
    docIndex += 1;
    if (yamlDoc.errors.length > 0) {
      for (const error of yamlDoc.errors) {
        // yaml's message already says "at line L, column C"; its snippet follows the first line.
        const firstLine = (error.message.split('\n')[0] ?? '').replace(/:$/, '');
        problems.push(`${where(source.name, docIndex)}: YAML syntax error: ${firstLine}`);
      }
      continue;
    }
    const lineOf = (path: readonly PropertyKey[]): number | null => nodeLine(yamlDoc, lineCounter, path);
    let value: unknown;
    try {
      value = yamlDoc.toJS();
    } catch (error) {
      problems.push(`${where(source.name, docIndex)}: ${(error as Error).message}`);
      continue;
    }
    // A file may end with `---` or hold only comments; an empty document is not an error.
    if (value === null || value === undefined) continue;
    const result = policyDocumentSchema.safeParse(value, { reportInput: true });
    if (!result.success) {
      for (const issue of result.error.issues) {
        for (const { path, message } of describeIssue(issue)) {
          problems.push(problemText(source.name, docIndex, path, message, lineOf(path)));
        }
      }
      continue;
    }
    const semantic = checkSemantics(result.data);
    for (const { path, message } of semantic) {
      problems.push(problemText(source.name, docIndex, path, message, lineOf(path)));
    }
    if (semantic.length === 0) documents.push({ file: source.name, docIndex, doc: result.data, lineOf });
  }
  return { documents, problems };
}

/** The line of the node at `path`, or of its nearest ancestor when the field is missing. */
function nodeLine(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[]): number | null {
  for (let len = path.length; len >= 0; len -= 1) {
    const parentPath = path.slice(0, len);
    const node = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
    // An unknown key has no value node worth pointing at; point at the key itself.
    if (len === path.length && len > 0 && node === undefined) {
      const parent = len === 1 ? doc.contents : doc.getIn(path.slice(0, len - 1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[len - 1]);
        if (pair !== undefined && isNode(pair.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line;
      }
    }
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
  }
  return null;
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  array: 'a list',
  object: 'a mapping',
  boolean: 'true or false',
};

function describeValue(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  return `${typeof value} ${String(value)}`;
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}

const OPERATION_CLASSES =
  'the classes are read (get, list, query, aggregate, listen), write (create, update, delete) and admin (list collection ids, partition)';

interface IssueText {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** zod's default messages are written for developers; these are for policy authors. */
function describeIssue(issue: z.core.$ZodIssue): IssueText[] {
  const path = issue.path;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const shapeKey = formatPath(path).replace(/\[\d+\]/g, '[]');
      const allowed = ALLOWED_KEYS[shapeKey];
      const hint = allowed === undefined ? '' : `; allowed here: ${allowed.join(', ')}`;
      return issue.keys.map((key) => ({ path: [...path, key], message: `unknown field${hint}` }));
    }
    case 'invalid_type': {
      if (issue.input === undefined) return [{ path, message: 'required' }];
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      // YAML reads `[true]` or `[42]` as non-strings; claim values are matched as text.
      const inClaims = path.includes('claims') || path.includes('notClaims');
      const hint = inClaims && issue.expected === 'string' ? '; quote it: claim values match as strings' : '';
      return [{ path, message: `expected ${expected}, got ${describeValue(issue.input)}${hint}` }];
    }
    case 'invalid_value': {
      const quoted = issue.values.map((v) => quote(v));
      const options = quoted.length > 2 ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` : quoted.join(' or ');
      if (issue.input === undefined) return [{ path, message: `required: ${options}` }];
      // People write Firestore's method names; the policy speaks in classes.
      const hint = path.includes('operations') ? `; ${OPERATION_CLASSES}` : '';
      return [{ path, message: `expected ${options}, got ${describeValue(issue.input)}${hint}` }];
    }
    case 'too_small': {
      if (issue.origin === 'array') {
        const last = path[path.length - 1];
        const hint = last === 'rules' ? '' : '; omit the field to match anything';
        return [{ path, message: `must not be empty${hint}` }];
      }
      return [{ path, message: 'must not be empty' }];
    }
    case 'too_big':
      return [{ path, message: `must be at most ${String(issue.maximum)} characters` }];
    case 'invalid_key': {
      // A bad key in a record (claim names): zod nests the key's own issues.
      const why = issue.issues.map((inner) => inner.message).join('; ');
      return [{ path, message: `${quote(path[path.length - 1])} ${why}` }];
    }
    case 'invalid_format':
      return [{ path, message: `${quote(issue.input)} ${issue.message}` }];
    default:
      return [{ path, message: issue.message }];
  }
}
