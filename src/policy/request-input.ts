/**
 * A caller and a request as a person writes them (`policy explain` options, a policy test
 * case), turned into the Subject and PolicyRequest evaluate() takes. One set of rules for
 * both, so a test case means exactly what the same `policy explain` flags mean. Problems
 * name the input field; each front end says it in its own words (an option, a YAML path).
 */
import { isMeshgateError } from '../errors/index.ts';
import { firestorePathKind, firestoreRequestProblem } from './firestore-request.ts';
import { AUTH_METHODS, FIRESTORE_DEFAULT_DATABASE, FIRESTORE_OPERATIONS } from './schema.ts';
import { subjectFromPrincipal } from './subject.ts';
import type { FirestoreOperation, PolicyRequest, Subject } from './types.ts';

export interface CallerInput {
  /** `spiffe://td/ns/N/sa/S`, Istio's `td/ns/N/sa/S`, or any SPIFFE ID. */
  readonly principal: string;
  readonly authMethod?: string | undefined;
  /** Verified token claims; giving any makes the caller a jwt identity unless said otherwise. */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

export interface RequestInput {
  /** MariaDB: the database named at connect; undefined or null for none. */
  readonly database?: string | null | undefined;
  readonly direct?: boolean | undefined;
  /** Firestore: a path inside the database (`/` the root); its shape gives its kind. */
  readonly firestorePath?: string | undefined;
  readonly operation?: string | undefined;
  readonly firestoreDatabase?: string | undefined;
}

export type InputField = keyof CallerInput | keyof RequestInput;

/** How a front end names an input field in messages: `--auth-method`, `caller.authMethod`. */
export type FieldNamer = (field: InputField) => string;

/**
 * A caller or request that cannot be what its writer meant. `field` says which input; the
 * message names it (and any other field it mentions) the front end's way.
 */
export class InputProblem extends Error {
  readonly field: InputField;
  constructor(field: InputField, message: string) {
    super(message);
    this.name = 'InputProblem';
    this.field = field;
  }
}

/**
 * The caller as the proxy would see it. Without an auth method: jwt when claims are given
 * (only tokens carry claims), else mtls, the way a principal alone arrives.
 */
export function callerSubject(input: CallerInput, name: FieldNamer = (field) => field): Subject {
  let subject: Subject;
  try {
    subject = subjectFromPrincipal(input.principal);
  } catch (error) {
    if (isMeshgateError(error)) throw new InputProblem('principal', `${name('principal')}: ${error.message}`);
    throw error;
  }
  const hasClaims = input.claims !== undefined && Object.keys(input.claims).length > 0;
  const method = input.authMethod ?? (hasClaims ? 'jwt' : 'mtls');
  if (!(AUTH_METHODS as readonly string[]).includes(method)) {
    throw new InputProblem('authMethod', `${name('authMethod')}: expected mtls, jwt or xfcc, got ${JSON.stringify(method)}`);
  }
  if (hasClaims && method !== 'jwt') throw new InputProblem('claims', `${name('claims')}: only jwt identities carry claims, but ${name('authMethod')} is ${method}`);
  return { ...subject, authMethod: method, ...(method === 'jwt' ? { claims: { ...input.claims } } : {}) };
}

/**
 * The request: a MariaDB connection, or one Firestore path (even segments a document, odd a
 * collection, a last `**` segment a subtree, another `**` segment a collection group, `/`
 * the database root).
 */
export function policyRequest(input: RequestInput, name: FieldNamer = (field) => field): PolicyRequest {
  const { firestorePath: path, operation, firestoreDatabase, database, direct } = input;
  if (path === undefined) {
    if (operation !== undefined) throw new InputProblem('operation', `${name('operation')} needs ${name('firestorePath')}`);
    if (firestoreDatabase !== undefined) throw new InputProblem('firestoreDatabase', `${name('firestoreDatabase')} needs ${name('firestorePath')}`);
    return direct === true ? { engine: 'mysql', database: database ?? null, direct } : { engine: 'mysql', database: database ?? null };
  }
  if (direct === true) throw new InputProblem('direct', `${name('direct')} asks about MariaDB credentials; it does not go with ${name('firestorePath')}`);
  if (database !== undefined && database !== null) throw new InputProblem('database', `${name('database')} names a MariaDB database; with ${name('firestorePath')} use ${name('firestoreDatabase')}`);
  if (operation === undefined) throw new InputProblem('operation', `${name('operation')} is required with ${name('firestorePath')}: read, write or admin`);
  if (!(FIRESTORE_OPERATIONS as readonly string[]).includes(operation)) {
    throw new InputProblem('operation', `${name('operation')}: expected read, write or admin, got ${JSON.stringify(operation)}`);
  }
  const relative = path === '/' ? '' : path;
  const request = {
    engine: 'firestore',
    database: firestoreDatabase ?? FIRESTORE_DEFAULT_DATABASE,
    path: relative,
    pathKind: firestorePathKind(relative),
    operation: operation as FirestoreOperation,
  } as const;
  const problem = firestoreRequestProblem(request);
  if (problem !== null) throw new InputProblem('firestorePath', `${name('firestorePath')}: ${problem}`);
  return request;
}
