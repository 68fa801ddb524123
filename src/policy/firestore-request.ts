/**
 * Firestore requests as policy sees them (FirestoreRequest): what a path's shape says, why a
 * request cannot be evaluated, how a reason names it, and the operation class of each
 * Firestore method. How patterns match requests is firestore-path.ts.
 *
 * Paths are relative to `projects/P/databases/D/documents`:
 *  - document: an even number of segments, `orders/o1`; `""` is the database root (the
 *    parent of top-level collections, e.g. for ListCollectionIds);
 *  - collection: an odd number, `orders`, `orders/o1/items`;
 *  - collection-group: `PARENT/**\/ID` or `**\/ID`: every collection with id ID at any depth
 *    under the document PARENT (or the database root), as a query with allDescendants asks;
 *  - subtree: `PARENT/**` or `**`: every document of every collection at any depth under
 *    PARENT (or in the whole database), as a query with no collection id asks (the SDK's
 *    recursiveDelete), or ListDocuments without a collection id.
 * A real id `**` inside PARENT makes the request malformed rather than ambiguous.
 * (In this file's comments `\/` stands for `/`, which cannot follow `*` inside a comment.)
 */
import type { FirestoreOperation, FirestorePathKind, FirestoreRequest } from './types.ts';

/** Firestore's own limits: 100 path segments, document names up to 6 KiB. */
export const MAX_PATH_SEGMENTS = 100;
export const MAX_PATH_LENGTH = 6144;

const DOT = 46;

export function show(text: string): string {
  const quoted = JSON.stringify(text);
  return quoted.length > 80 ? `${quoted.slice(0, 76)}..."` : quoted;
}

/**
 * The documents a collection group or a subtree reaches: `PARENT/c1/d1/.../ck/dk/ID/<id>`
 * (k >= 0) for a group, `PARENT/c1/d1/.../ck/dk` (k >= 1) for a subtree, all ids arbitrary.
 */
export interface PathFamily {
  /** The parent document's segments; empty for the database root. */
  readonly parent: readonly string[];
  /** The group's collection id; null for a subtree, whose collections are all open. */
  readonly collectionId: string | null;
}

/** The family of a collection-group or subtree path that passed firestoreRequestProblem. */
export function familyOf(path: string, kind: 'collection-group' | 'subtree'): PathFamily {
  const segments = path.split('/');
  return kind === 'subtree'
    ? { parent: segments.slice(0, -1), collectionId: null }
    : { parent: segments.slice(0, -2), collectionId: segments.at(-1) ?? '' };
}

/** What a path looks like: a last `**` marks a subtree, another `**` a collection group, else the parity decides. */
export function firestorePathKind(path: string): FirestorePathKind {
  if (path === '') return 'document';
  const segments = path.split('/');
  if (segments.at(-1) === '**') return 'subtree';
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
    case 'subtree':
      // The parent is a document (even) or the root, and no id of it may read as `**`.
      if (deepCount !== 1 || deepAt !== count - 1 || count % 2 !== 1 || count > MAX_PATH_SEGMENTS + 1) {
        return `path ${show(path)} is not a subtree: write PARENT/** (PARENT a document) or ** for the whole database`;
      }
      return null;
    default:
      return `unknown path kind ${show(String(pathKind))}`;
  }
}

/** `document orders/o1`, `collection group items under orders/o1`, `subtree beneath orders/o1`. */
export function describeFirestorePath(path: string, kind: FirestorePathKind): string {
  if (kind === 'collection-group' || kind === 'subtree') {
    const family = familyOf(path, kind);
    const parent = family.parent.length === 0 ? 'the database root' : family.parent.join('/');
    return family.collectionId === null ? `subtree beneath ${parent}` : `collection group ${family.collectionId} under ${parent}`;
  }
  if (kind === 'document' && path === '') return 'the database root';
  return `${kind} ${path}`;
}

/**
 * The patterns that would let an ALLOW cover a subtree, narrowest first, for reasons:
 * `orders/o1/**` (which also covers orders/o1 itself), `orders/**`, `**`.
 */
export function subtreeGrantExamples(path: string): string[] {
  const { parent } = familyOf(path, 'subtree');
  const examples = parent.length === 0 ? [] : [`${parent.join('/')}/**`];
  if (parent.length > 2) examples.push(`${parent[0]}/**`);
  examples.push('**');
  return examples.map((e) => `"${e}"`);
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
