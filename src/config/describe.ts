/**
 * zod issues → problems an operator can act on: the field path, what is wrong in plain
 * words, what is allowed there and the fix. zod's own messages are written for developers
 * ("Invalid input: expected object, received undefined") and never reach the operator.
 */
import { ZodRecord, ZodUnion, type z } from 'zod';
import { allowedKeys, expectedText, fieldInfo, nestedKeys, schemaAt } from './schema-info.ts';

type Schema = z.core.$ZodType;
type Issue = z.core.$ZodIssue;

export interface ConfigProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** Issue paths are relative to `root`, which sits at `prefix` in the whole configuration. */
interface Scope {
  readonly root: Schema | undefined;
  readonly prefix: readonly PropertyKey[];
}

/** Internal marks that let one problem make another redundant. */
interface Described extends ConfigProblem {
  /** A required field that is absent. */
  readonly missing?: true;
  /** For an unknown key, the path of the allowed key it probably meant. */
  readonly meant?: readonly PropertyKey[];
}

export function describeIssues(schema: Schema, issues: readonly Issue[]): ConfigProblem[] {
  const described = issues.flatMap((issue) => describeIssue({ root: schema, prefix: [] }, issue));
  // `tsl:` for `tls:` is one mistake; "tls is required" (or "tls.cert is required") beside
  // "tsl: did you mean tls?" says it twice.
  const meant = described.flatMap((p) => (p.meant === undefined ? [] : [p.meant]));
  const saidByTypo = (path: readonly PropertyKey[]) => meant.some((m) => m.length <= path.length && pathKey(path.slice(0, m.length)) === pathKey(m));
  return described.filter((p) => !(p.missing === true && saidByTypo(p.path))).map(({ path, message }) => ({ path, message }));
}

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map(String));
}

function describeIssue(scope: Scope, issue: Issue): Described[] {
  const path = [...scope.prefix, ...issue.path];
  const field = scope.root === undefined ? undefined : schemaAt(scope.root, issue.path);
  const at = (message: string): Described[] => [{ path, message }];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => unknownKey(path, key, field, issue.input));
    case 'invalid_type': {
      // A non-finite number is reported with no input, only what was received.
      const received = (issue as { received?: unknown }).received;
      if (issue.input === undefined && received === undefined) return [{ path, message: required(path, field), missing: true }];
      if (field !== undefined && fieldInfo(field).meta.secret === true && !isMapping(issue.input)) return at(secretShape(path, issue.input));
      // `cert:` with nothing after it: say what belongs there rather than its type.
      const description = field === undefined ? undefined : fieldInfo(field).meta.description;
      if (issue.input === null && description !== undefined) return at(`has no value: ${description}`);
      const got = received === undefined ? describeValue(issue.input) : `the number ${String(received)}`;
      return at(`expected ${expected(field, issue.expected)}, got ${got}${typeHint(field, issue.input)}`);
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => String(v));
      if (issue.input === undefined) return at(`required: one of ${options.join(', ')}`);
      return at(`expected one of ${options.join(', ')}, got ${describeValue(issue.input)}${didYouMean(issue.input, options)}`);
    }
    case 'too_small':
      return at(tooSmall(issue, field));
    case 'too_big':
      return at(tooBig(issue));
    case 'invalid_format':
      return at(`expected ${formatText(issue)}, got ${describeValue(issue.input)}`);
    case 'not_multiple_of':
      return at(`must be a multiple of ${issue.divisor}, got ${describeValue(issue.input)}`);
    case 'invalid_key': {
      // The key's own issues are about the key, checked by the record's key schema.
      const record = scope.root === undefined ? undefined : schemaAt(scope.root, issue.path.slice(0, -1));
      const core = record === undefined ? undefined : fieldInfo(record).schema;
      const keyScope = { root: core instanceof ZodRecord ? (core.keyType as Schema) : undefined, prefix: path };
      const inner = issue.issues.flatMap((i) => describeIssue(keyScope, i)).map((p) => p.message);
      return at(`not allowed as a name here: ${inner.join('; ')}`);
    }
    case 'invalid_union':
      return describeUnion(issue, path, field);
    case 'custom':
      // Refinements carry meshgate's own words; one without them says only "Invalid input".
      if (/^Invalid input/.test(issue.message)) return at(`is not valid here: expected ${expected(field, 'value')}`);
      // A section another one needs (schema.ts sectionProblems) is as absent as a required field.
      return issue.params?.['missing'] === true ? [{ path, message: issue.message, missing: true }] : at(issue.message);
    default:
      return at(`is not valid here: expected ${expected(field, 'value')}`);
  }
}

/** A union's issues hold one list per form; only the form the operator was writing matters. */
function describeUnion(issue: z.core.$ZodIssueInvalidUnion, path: PropertyKey[], field: Schema | undefined): Described[] {
  const at = (message: string): Described[] => [{ path, message }];
  const input = issue.input;
  if (issue.discriminator !== undefined) {
    // zod's path already ends at the discriminator; the input is the mapping holding it.
    const options = ('options' in issue ? (issue.options ?? []) : []).map((v) => String(v));
    const value = isMapping(input) ? input[issue.discriminator] : undefined;
    if (value === undefined) return at(`required: one of ${options.join(', ')}`);
    return at(`expected one of ${options.join(', ')}, got ${describeValue(value)}${didYouMean(value, options)}`);
  }
  if (input === undefined) return [{ path, message: required(path, field), missing: true }];
  const info = field === undefined ? undefined : fieldInfo(field);
  if (info?.meta.secret === true && !isMapping(input)) return at(secretShape(path, input));
  const forms = info?.schema instanceof ZodUnion ? (info.schema.options as Schema[]) : [];
  if (field === undefined || !isMapping(input) || forms.length === 0 || issue.errors.length !== forms.length) {
    return at(`expected ${expected(field, 'value')}, got ${describeValue(input)}`);
  }
  const keys = Object.keys(input);
  if (keys.length === 0) return at(`expected ${expected(field, 'value')}, got an empty mapping`);
  const knownToAny = keys.filter((key) => allowedKeys(field).includes(key));
  if (knownToAny.length === 0) return keys.map((key) => unknownKey(path, key, field));
  const known = forms.map((form) => keys.filter((key) => allowedKeys(form).includes(key)).length);
  const best = known.indexOf(Math.max(...known));
  // One form knows every key any form knows: its own errors say what is wrong.
  if (known[best] === knownToAny.length && known.lastIndexOf(known[best]!) === best) {
    const scopeOfForm = { root: forms[best], prefix: path };
    return issue.errors[best]!.flatMap((inner) => describeIssue(scopeOfForm, inner));
  }
  // Keys of two forms at once ({ url, file }, { env, file }): no single form's errors explain it.
  const listed = knownToAny.length <= 2 ? knownToAny.join(' and ') : `${knownToAny.slice(0, -1).join(', ')} and ${knownToAny.at(-1)!}`;
  return at(`${listed} cannot be used together: give ${expected(field, 'value')}`);
}

function required(path: readonly PropertyKey[], field: Schema | undefined): string {
  if (field === undefined) return 'required';
  const { meta } = fieldInfo(field);
  if (meta.secret === true) return `required: ${lastName(path)}: { file: … } or { env: … } (secrets are never written inline)`;
  return `required: ${meta.description ?? expectedText(field)}`;
}

/** A secret given as a plain value. The value itself is never repeated: it may be the secret. */
function secretShape(path: readonly PropertyKey[], input: unknown): string {
  const name = lastName(path);
  const fix = `use ${name}: { file: … } or { env: … }`;
  if (input === null) return `expected ${name}: { file: … } or { env: … }, got an empty value`;
  if (Array.isArray(input)) return `expected ${name}: { file: … } or { env: … }, got a list`;
  return `inline ${name === 'password' ? 'passwords' : 'secrets'} are not allowed: ${fix}`;
}

function unknownKey(parentPath: readonly PropertyKey[], key: string, parent: Schema | undefined, input?: unknown): Described {
  const path = [...parentPath, key];
  const allowed = parent === undefined ? [] : allowedKeys(parent, input);
  if (allowed.length === 0) return { path, message: 'unknown key' };
  const suggestion = closest(key, allowed);
  const list = `unknown key; allowed here: ${allowed.join(', ')}`;
  if (suggestion !== null) return { path, message: `${list}; did you mean ${suggestion}?`, meant: [...parentPath, suggestion] };
  // A key written one level too high (`listener.cert` for `listener.tls.cert`).
  const home = parent === undefined ? undefined : [...nestedKeys(parent)].find(([, keys]) => keys.includes(key));
  return { path, message: home === undefined ? list : `${list}; did you mean to put it under ${home[0]}?` };
}

/** zod's type names in words, for the rare issue whose field the schema walk cannot find. */
const PLAIN_TYPES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

function expected(field: Schema | undefined, zodExpected: string): string {
  if (field !== undefined) return expectedText(field);
  return PLAIN_TYPES[zodExpected] ?? 'a different value';
}

/** YAML quoting and list syntax trip people up more than anything else. */
function typeHint(field: Schema | undefined, input: unknown): string {
  if (field === undefined) return '';
  const text = expectedText(field);
  if (typeof input === 'string' && /number/.test(text) && input.trim() !== '' && Number.isFinite(Number(input))) {
    return '; write it without quotes';
  }
  if (text.startsWith('a list') && (typeof input === 'string' || typeof input === 'number')) {
    return `; write a list: [${String(input)}]`;
  }
  return '';
}

function tooSmall(issue: z.core.$ZodIssueTooSmall, field: Schema | undefined): string {
  const minimum = String(issue.minimum);
  const description = field === undefined ? undefined : fieldInfo(field).meta.description;
  const purpose = description === undefined ? '' : `: ${description}`;
  switch (issue.origin) {
    case 'string':
      return issue.minimum === 1 ? `must not be empty${purpose}` : `must be at least ${minimum} characters long`;
    case 'array':
      return issue.minimum === 1 ? `must list at least one entry${purpose}` : `must list at least ${minimum} entries`;
    default:
      return `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${minimum}, got ${describeValue(issue.input)}`;
  }
}

function tooBig(issue: z.core.$ZodIssueTooBig): string {
  const maximum = String(issue.maximum);
  switch (issue.origin) {
    case 'string':
      return `must be at most ${maximum} characters long${typeof issue.input === 'string' ? ` (it has ${issue.input.length})` : ''}`;
    case 'array':
      return `must list at most ${maximum} entries`;
    default:
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${maximum}, got ${describeValue(issue.input)}`;
  }
}

/** The schema's own words for a format ("a duration: …"), or plain words for zod's default. */
function formatText(issue: z.core.$ZodIssueInvalidStringFormat): string {
  if (!/^Invalid/.test(issue.message)) return issue.message;
  const detail = issue as { prefix?: string; suffix?: string; includes?: string };
  switch (issue.format) {
    case 'regex':
      return `text matching ${issue.pattern ?? 'the required pattern'}`;
    case 'starts_with':
      return `text starting with ${quote(detail.prefix)}`;
    case 'ends_with':
      return `text ending with ${quote(detail.suffix)}`;
    case 'includes':
      return `text containing ${quote(detail.includes)}`;
    case 'url':
      return 'a URL';
    default:
      return `a valid ${issue.format}`;
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function lastName(path: readonly PropertyKey[]): string {
  const last = path[path.length - 1];
  return typeof last === 'string' ? last : 'value';
}

export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty mapping' : 'a mapping';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'number') return `the number ${String(value)}`;
  return String(value);
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}

/** The allowed word a typo most likely meant: same letters in another case, or an edit or two away. */
export function closest(word: string, candidates: readonly string[]): string | null {
  const lower = word.toLowerCase();
  const limit = word.length <= 4 ? 1 : 2;
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function didYouMean(value: unknown, options: readonly string[]): string {
  if (typeof value !== 'string') return '';
  const suggestion = closest(value, options);
  return suggestion === null ? '' : `; did you mean ${suggestion}?`;
}

/** Optimal string alignment: a swapped pair of letters (`tsl`) counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
