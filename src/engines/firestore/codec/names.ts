/**
 * Firestore resource names: `projects/{project}/databases/{database}` and, below it,
 * `…/documents` (the root) or `…/documents/{collection}/{doc}/…`. Policy sees the path
 * inside the database; the project is checked against meshgate's configuration.
 */
import { mgError } from '../../../errors/index.ts';

export interface DatabaseName {
  readonly project: string;
  readonly database: string;
}

export interface DocumentsName extends DatabaseName {
  /** Segments below `documents`, joined with '/'; '' for the root. */
  readonly path: string;
  readonly segments: number;
}

const MAX_NAME_LENGTH = 6 * 1024;

function invalid(what: string, name: string): never {
  // Enough to recognise the name; the caller's bytes go into errors and the audit trail.
  const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
  throw mgError('MG_PACKET_MALFORMED', `${what} ${JSON.stringify(shown)} is not a Firestore resource name (projects/{project}/databases/{database}/documents/…)`);
}

function head(name: string, what: string): { project: string; database: string; rest: string[] } {
  if (name.length > MAX_NAME_LENGTH) invalid(what, name);
  const parts = name.split('/');
  if (parts.length < 4 || parts[0] !== 'projects' || parts[2] !== 'databases' || parts[1] === '' || parts[3] === '') invalid(what, name);
  return { project: parts[1]!, database: parts[3]!, rest: parts.slice(4) };
}

export function parseDatabaseName(name: string, what = 'database'): DatabaseName {
  const { project, database, rest } = head(name, what);
  if (rest.length !== 0) invalid(what, name);
  return { project, database };
}

/** `…/documents` or `…/documents/a/b/…`; every segment non-empty and not `.` or `..`. */
export function parseDocumentsName(name: string, what = 'name'): DocumentsName {
  const { project, database, rest } = head(name, what);
  if (rest[0] !== 'documents') invalid(what, name);
  const segments = rest.slice(1);
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') invalid(what, name);
  }
  return { project, database, path: segments.join('/'), segments: segments.length };
}

/** A collection id from a request field (no slashes: one segment). */
export function checkCollectionId(id: string, what: string): string {
  if (id === '' || id.includes('/') || id === '.' || id === '..' || id.length > 1500) {
    throw mgError('MG_PACKET_MALFORMED', `${what} ${JSON.stringify(id.slice(0, 80))} is not a collection id`);
  }
  return id;
}

export function joinPath(parent: string, child: string): string {
  return parent === '' ? child : `${parent}/${child}`;
}
