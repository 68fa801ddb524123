/**
 * Firestore collection-path patterns (`to[].firestore.collections`), compiled once and
 * matched segment-wise against the path of a request inside its database.
 *
 * Patterns. Segments separated by "/"; each is
 *  - `*`: exactly one segment (any id),
 *  - `**`: zero or more segments (anywhere in the pattern, any number of times),
 *  - otherwise one of glob.ts's forms applied to that one segment: an exact id, a prefix
 *    `tmp-*` or a suffix `*-eu`. A `*` never crosses a "/".
 * A pattern names documents: without `**` it must have an even number of segments
 * (`orders/*`, `orders/*\/items/*`); `orders` alone is refused with a hint.
 *
 * Requests (FirestoreRequest.path, relative to `projects/P/databases/D/documents`):
 *  - document: an even number of segments, `orders/o1`; `""` is the database root (the
 *    parent of top-level collections, e.g. for ListCollectionIds);
 *  - collection: an odd number, `orders`, `orders/o1/items`;
 *  - collection-group: `PARENT/**\/ID` or `**\/ID`: every collection with id ID at any depth
 *    under the document PARENT (or the database root), as a query with allDescendants asks.
 *
 * What "matches" means depends on who asks, so that deny always wins:
 *  - ALLOW (coverage `every`): the patterns, together, must contain EVERY document the
 *    request can reach: a document itself; for a collection C every `C/<id>`; for a group
 *    every `PARENT/c1/d1/.../ck/dk/ID/<id>`, k >= 0, all ids arbitrary.
 *  - DENY (coverage `some`): one pattern containing SOME document the request can reach
 *    suffices, so listing `orders` is denied by a DENY on `orders/secret-*`: the proxy
 *    cannot know which documents a list or query will return.
 *
 * How: patterns are segment automata (a chain of states, `**` looping). A document or
 * collection path is matched on the request string by the classic greedy wildcard
 * algorithm over segment boundaries, allocating nothing. The ids a request leaves open are
 * abstract symbols: FRESH matches only `*`/`**` (the worst id for an ALLOW: any real id
 * matches at least what FRESH matches, and the automaton is monotone in what a symbol
 * matches), JOKER matches every segment (the best id for a DENY: each open position picks
 * its own id). A collection group is an infinite family; its words differ only in how many
 * FRESH/JOKER pairs follow PARENT, so the automaton's state set after k pairs is an
 * eventually periodic sequence that is walked until it repeats.
 *
 * docs/policy-firestore.md has the user-facing version with examples. (In this file's
 * comments `\/` stands for `/`, which cannot follow `*` inside a comment.)
 */
import { globProblem } from './glob.ts';
import type { FirestoreOperation, FirestorePathKind, FirestoreRequest } from './types.ts';

/** Firestore's own limits: 100 path segments, document names up to 6 KiB. */
export const MAX_PATH_SEGMENTS = 100;
export const MAX_PATH_LENGTH = 6144;

/** Who asks: an ALLOW must cover every reachable document, a DENY only some. */
export type Coverage = 'every' | 'some';

const ANY = 0;
const DEEP = 1;
const EXACT = 2;
const PREFIX = 3;
const SUFFIX = 4;
type SegmentKind = typeof ANY | typeof DEEP | typeof EXACT | typeof PREFIX | typeof SUFFIX;

interface PatternSegment {
  readonly kind: SegmentKind;
  /** The id (EXACT), the prefix or the suffix; empty for ANY and DEEP. */
  readonly text: string;
}

export interface PathPattern {
  /** As written, for traces and reasons. */
  readonly source: string;
  readonly segments: readonly PatternSegment[];
}

// Abstract ids for the parts of a request it leaves open (see the header).
const NONE = 0;
const FRESH = 1;
const JOKER = 2;
type Open = typeof FRESH | typeof JOKER;

const DOT = 46;

function show(text: string): string {
  const quoted = JSON.stringify(text);
  return quoted.length > 80 ? `${quoted.slice(0, 76)}..."` : quoted;
}

// ---------------------------------------------------------------------------------------
// Patterns

/** Why a `collections` entry is not a valid pattern, or null when it is. */
export function pathPatternProblem(pattern: string): string | null {
  if (pattern === '') return 'must not be empty';
  if (pattern.length > MAX_PATH_LENGTH) return `${show(pattern)} is longer than ${MAX_PATH_LENGTH} characters`;
  if (pattern.startsWith('/') || pattern.endsWith('/')) {
    return `${show(pattern)}: no leading or trailing "/"; patterns are paths inside the database, e.g. "orders/*"`;
  }
  const segments = pattern.split('/');
  if (segments.length > MAX_PATH_SEGMENTS) return `${show(pattern)} has more than ${MAX_PATH_SEGMENTS} segments`;
  let deep = false;
  for (const segment of segments) {
    if (segment === '') return `${show(pattern)} has an empty segment ("//")`;
    if (segment === '.' || segment === '..') return `${show(pattern)}: "." and ".." are not Firestore ids`;
    if (segment === '**') {
      deep = true;
      continue;
    }
    if (globProblem(segment) !== null) {
      return (
        `${show(pattern)}: segment ${show(segment)}: a segment is "*" (one segment), "**" (any number of segments), ` +
        'an id, or an id with one "*" at its start or end'
      );
    }
  }
  if (!deep && segments.length % 2 === 1) {
    return `${show(pattern)} names a collection, but patterns name documents: write "${pattern}/*" for its documents (which also covers listing and querying it)`;
  }
  return null;
}

/** Compiles a pattern that passed pathPatternProblem; consecutive `**` collapse to one. */
export function compilePathPattern(pattern: string): PathPattern {
  const segments: PatternSegment[] = [];
  for (const text of pattern.split('/')) {
    if (text === '**') {
      if (segments.at(-1)?.kind !== DEEP) segments.push({ kind: DEEP, text: '' });
    } else if (text === '*') segments.push({ kind: ANY, text: '' });
    else if (text.endsWith('*')) segments.push({ kind: PREFIX, text: text.slice(0, -1) });
    else if (text.startsWith('*')) segments.push({ kind: SUFFIX, text: text.slice(1) });
    else segments.push({ kind: EXACT, text });
  }
  return Object.freeze({ source: pattern, segments: Object.freeze(segments.map((s) => Object.freeze(s))) });
}

/** Whether a (non-DEEP) pattern segment matches `path[pos, end)`; allocates nothing. */
function segmentMatches(segment: PatternSegment, path: string, pos: number, end: number): boolean {
  switch (segment.kind) {
    case ANY:
      return true;
    case EXACT:
      return end - pos === segment.text.length && path.startsWith(segment.text, pos);
    case PREFIX:
      return end - pos >= segment.text.length && path.startsWith(segment.text, pos);
    case SUFFIX:
      return end - pos >= segment.text.length && path.endsWith(segment.text, end);
    default:
      return false;
  }
}

function openMatches(segment: PatternSegment, open: number): boolean {
  return open === JOKER || segment.kind === ANY;
}

/**
 * Whether the pattern matches the segments of `path` followed, when `tail` is FRESH or
 * JOKER, by one more open segment. Greedy wildcard matching with one backtrack point (the
 * last `**`), correct because every other pattern segment consumes exactly one segment.
 * Positions: a real segment starts at 0..len; the open tail "starts" at len + 1.
 */
function matchesPath(pattern: PathPattern, path: string, tail: number): boolean {
  const segments = pattern.segments;
  const n = segments.length;
  const len = path.length;
  const stop = tail === NONE ? len + 1 : len + 2;
  let pos = len === 0 ? len + 1 : 0; // the root path "" has no segments of its own
  let p = 0;
  let star = -1;
  let mark = 0;
  while (pos < stop) {
    const segment = p < n ? segments[p]! : null;
    if (segment !== null && segment.kind === DEEP) {
      star = p;
      mark = pos;
      p += 1;
      continue;
    }
    let end = pos;
    if (pos <= len) {
      const slash = path.indexOf('/', pos);
      end = slash < 0 ? len : slash;
    }
    if (segment !== null && (pos > len ? openMatches(segment, tail) : segmentMatches(segment, path, pos, end))) {
      p += 1;
      pos = end + 1;
      continue;
    }
    if (star < 0) return false;
    p = star + 1;
    if (mark > len) mark += 1;
    else {
      const slash = path.indexOf('/', mark);
      mark = slash < 0 ? len + 1 : slash + 1;
    }
    pos = mark;
  }
  while (p < n && segments[p]!.kind === DEEP) p += 1;
  return p === n;
}

// ---------------------------------------------------------------------------------------
// Collection groups: the state-set walk (allocates; one call per query, not per document)

/** A symbol of a group's word: a real id, or an open one. */
type GroupSymbol = string | Open;

function closeOver(pattern: PathPattern, states: Uint8Array): void {
  const segments = pattern.segments;
  for (let i = 0; i < segments.length; i += 1) if (states[i] === 1 && segments[i]!.kind === DEEP) states[i + 1] = 1;
}

function step(pattern: PathPattern, states: Uint8Array, symbol: GroupSymbol): Uint8Array {
  const segments = pattern.segments;
  const next = new Uint8Array(segments.length + 1);
  for (let i = 0; i < segments.length; i += 1) {
    if (states[i] !== 1) continue;
    const segment = segments[i]!;
    if (segment.kind === DEEP) next[i] = 1;
    else if (typeof symbol === 'number' ? openMatches(segment, symbol) : segmentMatches(segment, symbol, 0, symbol.length)) next[i + 1] = 1;
  }
  closeOver(pattern, next);
  return next;
}

interface GroupPath {
  /** The parent document's segments; empty for the database root. */
  readonly parent: readonly string[];
  readonly collectionId: string;
}

/** `PARENT/**\/ID` or `**\/ID` (validated by firestoreRequestProblem). */
function groupPath(path: string): GroupPath {
  const segments = path.split('/');
  return { parent: segments.slice(0, -2), collectionId: segments.at(-1) ?? '' };
}

/**
 * The first k (pairs of open ids between parent and group) for which whether some pattern
 * accepts `PARENT/(open open)^k/ID/open` equals `want`, or -1 when no k gives that.
 */
function firstGroupDepth(patterns: readonly PathPattern[], group: GroupPath, open: Open, want: boolean): number {
  let states = patterns.map((pattern): Uint8Array => {
    let s: Uint8Array = new Uint8Array(pattern.segments.length + 1);
    s[0] = 1;
    closeOver(pattern, s);
    for (const id of group.parent) s = step(pattern, s, id);
    return s;
  });
  const seen = new Set<string>();
  for (let k = 0; ; k += 1) {
    const key = states.map((s) => s.join('')).join('|');
    if (seen.has(key)) return -1;
    seen.add(key);
    let accepted = false;
    for (let i = 0; i < patterns.length && !accepted; i += 1) {
      const pattern = patterns[i]!;
      const end = step(pattern, step(pattern, states[i]!, group.collectionId), open);
      accepted = end[pattern.segments.length] === 1;
    }
    if (accepted === want) return k;
    states = states.map((s, i) => step(patterns[i]!, step(patterns[i]!, s, open), open));
  }
}

// ---------------------------------------------------------------------------------------
// Requests

/** What a path looks like: `**` marks a collection group, else the parity decides. */
export function firestorePathKind(path: string): FirestorePathKind {
  if (path === '') return 'document';
  const segments = path.split('/');
  if (segments.includes('**')) return 'collection-group';
  return segments.length % 2 === 0 ? 'document' : 'collection';
}

const OPERATIONS: ReadonlySet<string> = new Set<FirestoreOperation>(['read', 'write', 'admin']);

/**
 * Why a request cannot be evaluated (so it is denied), or null. One pass over the path, no
 * allocation; evaluate() calls it once per request, before any rule.
 */
export function firestoreRequestProblem(request: FirestoreRequest): string | null {
  const { database, path, pathKind, operation } = request;
  if (typeof database !== 'string' || database === '') return 'the request names no Firestore database';
  if (typeof operation !== 'string' || !OPERATIONS.has(operation)) return `unknown Firestore operation ${show(String(operation))}`;
  if (typeof path !== 'string') return 'the request has no path';
  if (path.length > MAX_PATH_LENGTH) return `the path is longer than ${MAX_PATH_LENGTH} characters`;
  if (path === '' && pathKind === 'document') return null;
  let count = 0;
  let deepAt = -1;
  let deepCount = 0;
  for (let pos = 0; ; ) {
    const slash = path.indexOf('/', pos);
    const end = slash < 0 ? path.length : slash;
    const size = end - pos;
    if (size === 0) return `path ${show(path)} has an empty segment`;
    if (size <= 2 && path.charCodeAt(pos) === DOT && (size === 1 || path.charCodeAt(pos + 1) === DOT)) {
      return `path ${show(path)}: "." and ".." are not Firestore ids`;
    }
    if (size === 2 && path.startsWith('**', pos)) {
      deepAt = count;
      deepCount += 1;
    }
    count += 1;
    if (slash < 0) break;
    pos = slash + 1;
  }
  switch (pathKind) {
    case 'document':
      if (count > MAX_PATH_SEGMENTS) return `path ${show(path)} has more than ${MAX_PATH_SEGMENTS} segments`;
      return count % 2 === 0 ? null : `path ${show(path)} has an odd number of segments, so it names a collection, not a document`;
    case 'collection':
      if (count > MAX_PATH_SEGMENTS) return `path ${show(path)} has more than ${MAX_PATH_SEGMENTS} segments`;
      return count % 2 === 1 ? null : `path ${show(path)} has an even number of segments, so it names a document, not a collection`;
    case 'collection-group':
      if (deepCount !== 1 || deepAt !== count - 2 || count % 2 !== 0 || count > MAX_PATH_SEGMENTS + 1) {
        return `path ${show(path)} is not a collection group: write PARENT/**/COLLECTION_ID or **/COLLECTION_ID`;
      }
      return null;
    default:
      return `unknown path kind ${show(String(pathKind))}`;
  }
}

/**
 * Whether the patterns match a valid request path under the given coverage (see the
 * header). Document and collection paths allocate nothing.
 */
export function pathMatches(patterns: readonly PathPattern[], path: string, kind: FirestorePathKind, coverage: Coverage): boolean {
  if (kind === 'collection-group') {
    const group = groupPath(path);
    return coverage === 'every' ? firstGroupDepth(patterns, group, FRESH, false) < 0 : firstGroupDepth(patterns, group, JOKER, true) >= 0;
  }
  const tail = kind === 'document' ? NONE : coverage === 'every' ? FRESH : JOKER;
  for (let i = 0; i < patterns.length; i += 1) if (matchesPath(patterns[i]!, path, tail)) return true;
  return false;
}

/** How explain() shows an id the request leaves open. */
export const OPEN_ID = '{any}';

/**
 * A document the request can reach that no pattern contains (open ids shown as `{any}`),
 * or null when the patterns cover the request. Agrees with pathMatches(..., 'every').
 */
export function uncoveredExample(patterns: readonly PathPattern[], path: string, kind: FirestorePathKind): string | null {
  if (pathMatches(patterns, path, kind, 'every')) return null;
  if (kind === 'document') return path;
  if (kind === 'collection') return `${path}/${OPEN_ID}`;
  const group = groupPath(path);
  const k = firstGroupDepth(patterns, group, FRESH, false);
  return [...group.parent, ...Array<string>(2 * Math.max(k, 0)).fill(OPEN_ID), group.collectionId, OPEN_ID].join('/');
}

/** `document orders/o1`, `collection orders`, `collection group items under orders/o1`. */
export function describeFirestorePath(path: string, kind: FirestorePathKind): string {
  if (kind === 'collection-group') {
    const group = groupPath(path);
    const parent = group.parent.length === 0 ? 'the database root' : group.parent.join('/');
    return `collection group ${group.collectionId} under ${parent}`;
  }
  if (kind === 'document' && path === '') return 'the database root';
  return `${kind} ${path}`;
}

/**
 * The operation class of each google.firestore.v1.Firestore method that names paths, for
 * engines (BeginTransaction and Rollback name none). Commit, BatchWrite and Write are
 * decided per written document; BatchGetDocuments per document; Listen per target.
 */
export const FIRESTORE_METHOD_OPERATIONS: Readonly<Record<string, FirestoreOperation>> = Object.freeze({
  GetDocument: 'read',
  ListDocuments: 'read',
  BatchGetDocuments: 'read',
  RunQuery: 'read',
  RunAggregationQuery: 'read',
  Listen: 'read',
  CreateDocument: 'write',
  UpdateDocument: 'write',
  DeleteDocument: 'write',
  Commit: 'write',
  BatchWrite: 'write',
  Write: 'write',
  ListCollectionIds: 'admin',
  PartitionQuery: 'admin',
});
