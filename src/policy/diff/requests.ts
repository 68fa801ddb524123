/**
 * The requests `policy diff` tries for each caller. MariaDB: every database either policy
 * names (a value for each prefix or suffix pattern), no database, a database no rule names,
 * and direct credentials for each named one. Firestore: in every database named, for each
 * collection pattern a document and a collection it names, each read, written and
 * administered. Bounded by what the policies name, and sorted.
 */
import { firestorePathKind, firestoreRequestProblem } from '../firestore-request.ts';
import type { GlobSet } from '../glob.ts';
import type { CompiledRule } from '../match.ts';
import { FIRESTORE_DEFAULT_DATABASE, FIRESTORE_OPERATIONS } from '../schema.ts';
import type { FirestoreRequest, MysqlRequest, PolicyRequest } from '../types.ts';
import { globWitnesses, outsideAll } from './subjects.ts';

export interface DiffRequest {
  /** What people read: `mariadb db shop`, `firestore write doc orders/any-id`. */
  readonly label: string;
  readonly request: PolicyRequest;
}

/** The id standing for "any document id" in synthesized paths. */
export const PLACEHOLDER_ID = 'any-id';

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A pattern's segments with each wildcard given an id; `**` stands for no segment. */
function pathOf(pattern: string): string[] {
  const out: string[] = [];
  for (const segment of pattern.split('/')) {
    if (segment === '**') continue;
    if (segment === '*') out.push(PLACEHOLDER_ID);
    else if (segment.endsWith('*')) out.push(`${segment.slice(0, -1)}x`);
    else if (segment.startsWith('*')) out.push(`x${segment.slice(1)}`);
    else out.push(segment);
  }
  return out;
}

/** A document and a collection the pattern names: `orders/*` → `orders/any-id` and `orders`. */
export function firestorePathsOf(pattern: string): string[] {
  const segments = pathOf(pattern);
  if (segments.length === 0) segments.push(PLACEHOLDER_ID);
  const document = segments.length % 2 === 0 ? segments : [...segments, PLACEHOLDER_ID];
  return [document.join('/'), document.slice(0, -1).join('/')];
}

function mysqlLabel(request: MysqlRequest, unnamed: boolean): string {
  const what = request.database === null ? '(no database)' : `db ${request.database}${unnamed ? ' (named by no rule)' : ''}`;
  return request.direct === true ? `mariadb direct creds ${what}` : `mariadb ${what}`;
}

function firestoreLabel(request: FirestoreRequest): string {
  const kind = request.pathKind === 'document' ? 'doc' : 'collection';
  const where = request.database === FIRESTORE_DEFAULT_DATABASE ? '' : ` in db ${request.database}`;
  return `firestore ${request.operation} ${kind} ${request.path}${where}`;
}

export function diffRequests(rules: readonly CompiledRule[]): DiffRequest[] {
  const databaseSets: GlobSet[] = [];
  const firestoreDatabaseSets: GlobSet[] = [];
  const collections = new Set<string>();
  let firestore = false;
  for (const rule of rules) {
    for (const target of rule.targets ?? []) {
      if (target.engine === 'mysql') {
        if (target.databases !== null) databaseSets.push(target.databases);
      } else {
        firestore = true;
        firestoreDatabaseSets.push(target.databases);
        for (const pattern of target.collections) collections.add(pattern.source);
      }
    }
  }
  const requests: DiffRequest[] = [];
  const named = [...new Set(databaseSets.flatMap((set) => globWitnesses(set, 'any_db')))].sort(byCodeUnit);
  const unnamed = outsideAll(databaseSets, 'other_db');
  const sessions: MysqlRequest[] = [{ engine: 'mysql', database: null }, ...[...named, unnamed].map((database): MysqlRequest => ({ engine: 'mysql', database }))];
  for (const request of sessions) requests.push({ label: mysqlLabel(request, request.database === unnamed), request });
  for (const database of [...named, unnamed]) {
    const request: MysqlRequest = { engine: 'mysql', database, direct: true };
    requests.push({ label: mysqlLabel(request, database === unnamed), request });
  }
  if (!firestore) return requests;
  const databases = [...new Set(firestoreDatabaseSets.flatMap((set) => globWitnesses(set, 'any-db')))].sort(byCodeUnit);
  const paths = [...new Set([...collections].flatMap(firestorePathsOf))].sort(byCodeUnit);
  for (const database of databases) {
    for (const path of paths) {
      for (const operation of FIRESTORE_OPERATIONS) {
        const request: FirestoreRequest = { engine: 'firestore', database, path, pathKind: firestorePathKind(path), operation };
        if (firestoreRequestProblem(request) === null) requests.push({ label: firestoreLabel(request), request });
      }
    }
  }
  return requests;
}
