/**
 * The filters of `meshgate audit query`, checked once and compiled into one predicate over
 * events as they were read from a log anyone may have edited: every field is looked at with
 * its type checked, and an event without the field a filter asks about does not match it.
 * Several values of one filter: any of them; several filters: all of them.
 */
import { mgError } from '../../errors/index.ts';
import { compilePathPattern, pathMatches, pathPatternProblem, type FirestorePathKind, type PathPattern } from '../../policy/index.ts';
import { parseTraceparent } from '../trace-context.ts';
import { AUDIT_EVENT_TYPES } from '../types.ts';
import { digestKeyOf, splitRecordedPath } from './digest-key.ts';
import { parseTimeBound } from './time.ts';

/** What the command line gave, each list as typed (enumerations may also be comma-separated). */
export interface QueryFilterInput {
  readonly identity?: readonly string[];
  readonly namespace?: readonly string[];
  readonly trace?: readonly string[];
  readonly database?: readonly string[];
  readonly collection?: readonly string[];
  readonly verb?: readonly string[];
  readonly decision?: readonly string[];
  readonly rule?: readonly string[];
  readonly engine?: readonly string[];
  readonly type?: readonly string[];
  readonly outcome?: readonly string[];
  readonly fingerprint?: readonly string[];
  readonly since?: string;
  readonly until?: string;
}

/** Epoch ms; since inclusive, until exclusive; null: open. */
export interface TimeWindow {
  readonly since: number | null;
  readonly until: number | null;
}

export interface EventFilter {
  readonly window: TimeWindow;
  matches(event: Readonly<Record<string, unknown>>): boolean;
}

export const DECISIONS = ['allow', 'deny'] as const;
export const ENGINES = ['mysql', 'firestore'] as const;
export const OUTCOMES = ['completed', 'failed', 'unknown', 'refused'] as const;

type Test = (event: Readonly<Record<string, unknown>>) => boolean;

export function compileFilter(input: QueryFilterInput, nowMs: number): EventFilter {
  const tests: Test[] = [];
  const add = (values: readonly string[] | undefined, build: (values: string[]) => Test) => {
    const given = (values ?? []).map((v) => v.trim());
    if (given.length === 0) return;
    if (given.some((v) => v === '')) throw usage('a filter was given an empty value');
    tests.push(build(given));
  };

  add(input.type, (values) => fieldIn('type', oneOf('--type', values, AUDIT_EVENT_TYPES)));
  add(input.engine, (values) => fieldIn('engine', oneOf('--engine', values, ENGINES)));
  add(input.decision, (values) => fieldIn('decision', oneOf('--decision', values, DECISIONS)));
  add(input.outcome, (values) => fieldIn('outcome', oneOf('--outcome', values, OUTCOMES)));
  add(input.identity, (values) => {
    const globs = values.map(compileGlob);
    return (event) => identityNames(event).some((name) => globs.some((glob) => glob(name)));
  });
  add(input.namespace, (values) => {
    const globs = values.map(compileGlob);
    return (event) => {
      const namespace = identityOf(event)?.['namespace'];
      return typeof namespace === 'string' && globs.some((glob) => glob(namespace));
    };
  });
  add(input.trace, (values) => {
    const prefixes = values.map(traceIdPrefix);
    return (event) => {
      const id = event['traceId'];
      return typeof id === 'string' && prefixes.some((prefix) => id.startsWith(prefix));
    };
  });
  add(input.database, (values) => stringField('database', values.map(compileGlob)));
  add(input.rule, (values) => stringField('rule', values.map(compileGlob)));
  add(input.collection, (values) => {
    const patterns = values.map(collectionPattern);
    return (event) => recordedPaths(event).some(({ path, kind }) => pathMatches(patterns, path, kind, 'some'));
  });
  add(input.verb, (values) => {
    const wanted = new Set(splitLists(values).map((v) => v.toLowerCase()));
    return (event) => verbsOf(event).some((verb) => wanted.has(verb.toLowerCase()));
  });
  add(input.fingerprint, (values) => {
    const prefixes = values.map((value) => {
      if (!/^[0-9a-f]{6,16}$/i.test(value)) throw usage(`--fingerprint ${JSON.stringify(value)} is not a digest id: give the ID column of 'audit query --digest' (16 hex digits, or its first 6 or more)`);
      return value.toLowerCase();
    });
    return (event) => {
      const key = digestKeyOf(event);
      return key !== null && prefixes.some((prefix) => key.id.startsWith(prefix));
    };
  });

  const since = input.since === undefined ? null : parseTimeBound(input.since, '--since', nowMs);
  const until = input.until === undefined ? null : parseTimeBound(input.until, '--until', nowMs);
  if (since !== null && until !== null && since >= until) {
    throw usage(`--since (${new Date(since).toISOString()}) must be before --until (${new Date(until).toISOString()})`);
  }
  if (since !== null || until !== null) {
    tests.push((event) => {
      const time = typeof event['time'] === 'string' ? Date.parse(event['time']) : NaN;
      return !Number.isNaN(time) && (since === null || time >= since) && (until === null || time < until);
    });
  }
  return {
    window: { since, until },
    matches: (event) => tests.every((test) => test(event)),
  };
}

function usage(message: string) {
  return mgError('MG_USAGE', message);
}

/** `--type statement,rpc` and `--type statement --type rpc` alike. */
function splitLists(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function oneOf(option: string, values: readonly string[], allowed: readonly string[]): Set<string> {
  const given = splitLists(values).map((v) => v.toLowerCase());
  const unknown = given.filter((v) => !allowed.includes(v));
  if (unknown.length > 0) throw usage(`${option} ${JSON.stringify(unknown[0])} is not one of ${allowed.join(', ')}`);
  return new Set(given);
}

function fieldIn(field: string, wanted: ReadonlySet<string>): Test {
  return (event) => {
    const value = event[field];
    return typeof value === 'string' && wanted.has(value);
  };
}

function stringField(field: string, globs: readonly ((text: string) => boolean)[]): Test {
  return (event) => {
    const value = event[field];
    return typeof value === 'string' && globs.some((glob) => glob(value));
  };
}

function identityOf(event: Readonly<Record<string, unknown>>): Record<string, unknown> | null {
  const identity = event['identity'];
  return typeof identity === 'object' && identity !== null ? (identity as Record<string, unknown>) : null;
}

/** Who acted (SPIFFE ID and principal) and, for a credential, whose credential it is. */
function identityNames(event: Readonly<Record<string, unknown>>): string[] {
  const identity = identityOf(event);
  const names = [identity?.['spiffeId'], identity?.['principal']];
  if (event['type'] === 'credential') names.push(event['principal']);
  return names.filter((name): name is string => typeof name === 'string');
}

/**
 * `*` any run of characters (`/` too), `?` one character, anything else itself. Matched
 * greedily with one backtrack point, so a pattern of many stars stays linear per star.
 */
export function compileGlob(pattern: string): (text: string) => boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return (text) => text === pattern;
  return (text) => {
    let p = 0;
    let t = 0;
    let star = -1;
    let mark = 0;
    while (t < text.length) {
      const c = pattern[p];
      if (c === '*') {
        star = p++;
        mark = t;
      } else if (c !== undefined && (c === '?' || c === text[t])) {
        p++;
        t++;
      } else if (star >= 0) {
        p = star + 1;
        t = ++mark;
      } else {
        return false;
      }
    }
    while (pattern[p] === '*') p++;
    return p === pattern.length;
  };
}

/** A trace id, its first 8 or more hex digits, or a whole traceparent. */
function traceIdPrefix(value: string): string {
  const fromParent = parseTraceparent(value.toLowerCase());
  if (fromParent !== null) return fromParent.traceId;
  if (!/^[0-9a-f]{8,32}$/i.test(value)) {
    throw usage(`--trace ${JSON.stringify(value)} is not a trace id: give its 32 hex digits (or the first 8 or more), or a traceparent 00-<trace id>-<span id>-01`);
  }
  return value.toLowerCase();
}

/**
 * A Firestore path pattern as policy writes them (`orders/*`, `orders/**`, `users/*\/orders/*`);
 * a collection on its own (`orders`, `users/*\/orders`) stands for its documents.
 */
function collectionPattern(value: string): PathPattern {
  const segments = value.split('/');
  const pattern = !segments.includes('**') && segments.length % 2 === 1 ? `${value}/*` : value;
  const problem = pathPatternProblem(pattern);
  if (problem !== null) throw usage(`--collection ${pattern === value ? '' : `${JSON.stringify(value)}, read as its documents: `}${problem}`);
  return compilePathPattern(pattern);
}

/** The paths of a Firestore rpc or intent, with the kind the audit wrote after each. */
function recordedPaths(event: Readonly<Record<string, unknown>>): { path: string; kind: FirestorePathKind }[] {
  const paths = event['paths'];
  if (!Array.isArray(paths)) return [];
  return paths.filter((p): p is string => typeof p === 'string').map(splitRecordedPath);
}

/** SQL verbs of a statement (every statement of a multi-statement text); a Firestore call's method name. */
function verbsOf(event: Readonly<Record<string, unknown>>): string[] {
  if (event['type'] === 'rpc' || (event['type'] === 'intent' && event['engine'] === 'firestore')) {
    const method = event['type'] === 'rpc' ? event['method'] : event['command'];
    return typeof method === 'string' ? [method.slice(method.lastIndexOf('/') + 1)] : [];
  }
  if (event['type'] !== 'statement') return [];
  const verbs = Array.isArray(event['verbs']) ? event['verbs'] : [event['verb']];
  return verbs.filter((v): v is string => typeof v === 'string');
}
