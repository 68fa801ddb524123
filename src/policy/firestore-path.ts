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
 * Requests (FirestoreRequest, described in firestore-request.ts): a document, a collection,
 * a collection group `PARENT/**\/ID`, or a subtree `PARENT/**` (every document beneath PARENT
 * at any depth, in any collection).
 *
 * What "matches" means depends on who asks, so that deny always wins:
 *  - ALLOW (coverage `every`): the patterns, together, must contain EVERY document the
 *    request can reach: a document itself; for a collection C every `C/<id>`; for a group
 *    every `PARENT/c1/d1/.../ck/dk/ID/<id>`, k >= 0, all ids arbitrary; for a subtree every
 *    `PARENT/c1/d1/.../ck/dk`, k >= 1.
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
 * its own id). A collection group or a subtree is an infinite family; its words differ only
 * in how many FRESH/JOKER pairs follow PARENT, so the automaton's state set after k pairs is
 * an eventually periodic sequence that is walked until it repeats.
 *
 * docs/policy-firestore.md has the user-facing version with examples. (In this file's
 * comments `\/` stands for `/`, which cannot follow `*` inside a comment.)
 */
import { familyOf, MAX_PATH_LENGTH, MAX_PATH_SEGMENTS, show, type PathFamily } from './firestore-request.ts';
import { globProblem } from './glob.ts';
import type { FirestorePathKind } from './types.ts';

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
// Collection groups and subtrees: the state-set walk (allocates; one call per query, not per document)

/** A symbol of a family's word: a real id, or an open one. */
type FamilySymbol = string | Open;

function closeOver(pattern: PathPattern, states: Uint8Array): void {
  const segments = pattern.segments;
  for (let i = 0; i < segments.length; i += 1) if (states[i] === 1 && segments[i]!.kind === DEEP) states[i + 1] = 1;
}

function step(pattern: PathPattern, states: Uint8Array, symbol: FamilySymbol): Uint8Array {
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

/**
 * The first k (pairs of open ids between the parent and the last pair) for which whether
 * some pattern accepts `PARENT/(open open)^k/ID/open` (a group) or `PARENT/(open open)^k/open/open`
 * (a subtree: its collection is open too) equals `want`, or -1 when no k gives that.
 */
function firstFamilyDepth(patterns: readonly PathPattern[], family: PathFamily, open: Open, want: boolean): number {
  let states = patterns.map((pattern): Uint8Array => {
    let s: Uint8Array = new Uint8Array(pattern.segments.length + 1);
    s[0] = 1;
    closeOver(pattern, s);
    for (const id of family.parent) s = step(pattern, s, id);
    return s;
  });
  const last = family.collectionId ?? open;
  const seen = new Set<string>();
  for (let k = 0; ; k += 1) {
    const key = states.map((s) => s.join('')).join('|');
    if (seen.has(key)) return -1;
    seen.add(key);
    let accepted = false;
    for (let i = 0; i < patterns.length && !accepted; i += 1) {
      const pattern = patterns[i]!;
      const end = step(pattern, step(pattern, states[i]!, last), open);
      accepted = end[pattern.segments.length] === 1;
    }
    if (accepted === want) return k;
    states = states.map((s, i) => step(patterns[i]!, step(patterns[i]!, s, open), open));
  }
}

// ---------------------------------------------------------------------------------------
// Requests

/**
 * Whether the patterns match a valid request path under the given coverage (see the
 * header). Document and collection paths allocate nothing.
 */
export function pathMatches(patterns: readonly PathPattern[], path: string, kind: FirestorePathKind, coverage: Coverage): boolean {
  if (kind === 'collection-group' || kind === 'subtree') {
    const family = familyOf(path, kind);
    return coverage === 'every' ? firstFamilyDepth(patterns, family, FRESH, false) < 0 : firstFamilyDepth(patterns, family, JOKER, true) >= 0;
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
  const family = familyOf(path, kind);
  const k = firstFamilyDepth(patterns, family, FRESH, false);
  return [...family.parent, ...Array<string>(2 * Math.max(k, 0)).fill(OPEN_ID), family.collectionId ?? OPEN_ID, OPEN_ID].join('/');
}
