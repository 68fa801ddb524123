/**
 * What the digest groups by. A statement: its SQL fingerprint (fingerprint.ts); a command
 * without text (init_db, fetch, …): the command. A Firestore call: its method and the
 * pattern of each path it touched, document ids folded to `*` (`users/*\/orders/*`), so the
 * same call on other documents groups with it. (`*\/` stands for `*` then `/` here.)
 */
import { createHash } from 'node:crypto';
import type { FirestorePathKind } from '../../policy/index.ts';
import { sqlFingerprint } from './fingerprint.ts';

export interface DigestKey {
  readonly engine: string;
  readonly fingerprint: string;
  /** 16 hex digits of SHA-256 over engine and fingerprint: short enough to type (`--fingerprint`). */
  readonly id: string;
}

const KIND_SUFFIX = / \((collection|collection-group|subtree)\)$/;
const FIRESTORE_METHOD_PREFIX = /^google\.firestore\.v1\.Firestore\//;

/** Ids already computed: a log repeats a few fingerprints millions of times. Emptied when full. */
const ids = new Map<string, string>();
const MAX_REMEMBERED_IDS = 10_000;

export function digestId(engine: string, fingerprint: string): string {
  const key = `${engine}\0${fingerprint}`;
  let id = ids.get(key);
  if (id === undefined) {
    id = createHash('sha256').update(key).digest('hex').slice(0, 16);
    if (ids.size >= MAX_REMEMBERED_IDS) ids.clear();
    ids.set(key, id);
  }
  return id;
}

/** The key of a statement or rpc event; null for other events and for events without the fields. */
export function digestKeyOf(event: Readonly<Record<string, unknown>>): DigestKey | null {
  const engine = typeof event['engine'] === 'string' ? event['engine'] : 'unknown';
  let fingerprint: string;
  if (event['type'] === 'statement') {
    const text = event['statement'];
    const command = typeof event['command'] === 'string' ? event['command'] : 'unknown';
    fingerprint = typeof text === 'string' && text !== '' ? sqlFingerprint(text) || '(comments only)' : `(${command})`;
  } else if (event['type'] === 'rpc') {
    const method = typeof event['method'] === 'string' ? event['method'].replace(FIRESTORE_METHOD_PREFIX, '') : 'unknown';
    const paths = Array.isArray(event['paths']) ? event['paths'].filter((p): p is string => typeof p === 'string') : [];
    const patterns = [...new Set(paths.map(pathPattern))].sort();
    fingerprint = patterns.length === 0 ? method : `${method} ${patterns.join(', ')}`;
  } else {
    return null;
  }
  return { engine, fingerprint, id: digestId(engine, fingerprint) };
}

/**
 * A recorded Firestore path with its document ids as `*`: segments alternate collection id,
 * document id from the database root; a `**` (a collection group or a subtree) ends the
 * alternation, and what follows it is a collection id. The kind suffix the audit writes stays.
 */
export function pathPattern(recorded: string): string {
  const { path, kind } = splitRecordedPath(recorded);
  if (path === '') return kind === 'document' ? '(database)' : recorded;
  const segments = path.split('/');
  const deep = segments.indexOf('**');
  const folded = segments.map((segment, i) => (i % 2 === 1 && (deep === -1 || i < deep) ? '*' : segment));
  return folded.join('/') + (kind === 'document' ? '' : ` (${kind})`);
}

/** A path as the audit writes it: a document's bare, any other with its kind after it (`orders (collection)`). */
export function splitRecordedPath(recorded: string): { path: string; kind: FirestorePathKind } {
  const kind = KIND_SUFFIX.exec(recorded);
  return kind === null ? { path: recorded, kind: 'document' } : { path: recorded.slice(0, kind.index), kind: kind[1] as FirestorePathKind };
}
