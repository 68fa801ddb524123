/**
 * What a span says about an audit event, as OpenTelemetry's stable database conventions name
 * it (https://opentelemetry.io/docs/specs/semconv/database/database-spans/) plus meshgate's
 * own `meshgate.*` attributes: who (SPIFFE ID), which rule decided, what was decided, which
 * role ran it. Pure functions of the event, so what a trace shows is tested without an SDK.
 *
 * A statement or call is a CLIENT span toward the database (server.address is MariaDB's or
 * Firestore's); a login is a SERVER span, meshgate serving its caller.
 */
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_DB_COLLECTION_NAME,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  DB_SYSTEM_NAME_VALUE_MARIADB,
  RPC_SYSTEM_NAME_VALUE_GRPC,
} from '@opentelemetry/semantic-conventions';
import type { AttributeValue, Attributes } from '@opentelemetry/api';
import type { AuditError, AuditIdentity, ConnectionEvent, RpcEvent, StatementEvent } from '../audit/index.ts';
import { sanitizeSql } from '../engines/mysql/sql/index.ts';
import { GrpcStatus } from '../transport/grpc/index.ts';

/** Not in the conventions' registry yet; named as its Google siblings are (gcp.spanner). */
export const DB_SYSTEM_FIRESTORE = 'gcp.firestore';

export type QueryTextMode = 'sanitized' | 'full' | 'none';

export interface ServerAddress {
  readonly address: string;
  readonly port: number;
}

export interface AttributeOptions {
  readonly queryText: QueryTextMode;
  /** Where each engine's upstream is; absent when unknown. */
  readonly mysqlServer?: ServerAddress | undefined;
  readonly firestoreServer?: ServerAddress | undefined;
  /** The Google Cloud project the Firestore engine serves (db.namespace). */
  readonly firestoreProject?: string | undefined;
}

/** Whether the span is an error, and how it reads: `error.type` and the status description. */
export interface SpanError {
  readonly type: string;
  readonly message: string;
}

const GRPC_STATUS_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** `SELECT shop`: the operation and the database, as the conventions name a span. */
export function statementSpanName(event: StatementEvent): string {
  return spanName(operationOf(event), event.database, DB_SYSTEM_NAME_VALUE_MARIADB);
}

export function statementAttributes(event: StatementEvent, options: AttributeOptions): Attributes {
  const attributes: Attributes = {
    [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_NAME_VALUE_MARIADB,
    ...identityAttributes(event.identity),
    'meshgate.session.id': event.sessionId,
    'meshgate.decision': event.decision,
    'meshgate.outcome': event.outcome,
    'meshgate.mysql.command': event.command,
    'db.response.returned_rows': event.rowsReturned,
    'meshgate.rows_affected': event.rowsAffected,
  };
  set(attributes, ATTR_DB_NAMESPACE, event.database);
  set(attributes, ATTR_DB_OPERATION_NAME, operationOf(event));
  set(attributes, ATTR_DB_QUERY_TEXT, queryText(event, options.queryText));
  set(attributes, 'meshgate.rule', event.rule);
  set(attributes, 'meshgate.role', event.upstreamRole);
  set(attributes, 'meshgate.upstream.connection_id', event.upstreamConnectionId);
  serverAttributes(attributes, options.mysqlServer);
  // MariaDB's own error number; meshgate's refusals are error.type alone.
  if (typeof event.error?.code === 'number') set(attributes, ATTR_DB_RESPONSE_STATUS_CODE, String(event.error.code));
  return attributes;
}

/** ERROR when refused, failed or of unknown outcome. MariaDB's message may quote data: shown only with `full`. */
export function statementError(event: StatementEvent, queryTextMode: QueryTextMode): SpanError | null {
  return errorOf(event.error, event.outcome, event.decision, queryTextMode);
}

/** `RunQuery orders`: the method and the collection when the call touches one. */
export function rpcSpanName(event: RpcEvent): string {
  return spanName(methodName(event.method), collectionOf(event.paths), DB_SYSTEM_FIRESTORE);
}

export function rpcAttributes(event: RpcEvent, options: AttributeOptions): Attributes {
  const status = statusName(event.status);
  const attributes: Attributes = {
    [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_FIRESTORE,
    [ATTR_DB_OPERATION_NAME]: methodName(event.method),
    [ATTR_RPC_SYSTEM_NAME]: RPC_SYSTEM_NAME_VALUE_GRPC,
    [ATTR_RPC_METHOD]: event.method,
    [ATTR_RPC_STATUS_CODE]: status,
    [ATTR_CLIENT_ADDRESS]: event.peer.address,
    [ATTR_CLIENT_PORT]: event.peer.port,
    ...(event.identity === null ? {} : identityAttributes(event.identity)),
    'meshgate.session.id': event.sessionId,
    'meshgate.decision': event.decision,
    'meshgate.outcome': event.outcome,
    'meshgate.firestore.documents': event.documents,
  };
  set(attributes, ATTR_DB_NAMESPACE, options.firestoreProject);
  set(attributes, ATTR_DB_COLLECTION_NAME, collectionOf(event.paths));
  set(attributes, 'meshgate.firestore.operation', event.operation);
  set(attributes, 'meshgate.rule', event.rule);
  if (event.status !== GrpcStatus.OK) attributes[ATTR_DB_RESPONSE_STATUS_CODE] = status;
  if (options.queryText !== 'none' && event.paths.length > 0) {
    attributes['meshgate.firestore.paths'] = options.queryText === 'full' ? [...event.paths] : event.paths.map(sanitizePath);
  }
  serverAttributes(attributes, options.firestoreServer);
  return attributes;
}

/** As statementError; Firestore's failure is named by its gRPC status, as db.response.status_code is. */
export function rpcError(event: RpcEvent, queryTextMode: QueryTextMode): SpanError | null {
  const error = errorOf(event.error, event.outcome, event.decision, queryTextMode);
  if (error === null || typeof event.error?.code !== 'number') return error;
  const status = statusName(event.status);
  return { type: status, message: queryTextMode === 'full' ? error.message : status };
}

export function loginSpanName(event: ConnectionEvent): string {
  return `${event.engine} login`;
}

export function loginAttributes(event: ConnectionEvent, options: AttributeOptions): Attributes {
  const attributes: Attributes = {
    [ATTR_DB_SYSTEM_NAME]: event.engine === 'mysql' ? DB_SYSTEM_NAME_VALUE_MARIADB : DB_SYSTEM_FIRESTORE,
    [ATTR_CLIENT_ADDRESS]: event.peer.address,
    [ATTR_CLIENT_PORT]: event.peer.port,
    ...(event.identity === null ? {} : identityAttributes(event.identity)),
    'meshgate.session.id': event.sessionId,
    'meshgate.decision': event.decision,
    'meshgate.reason': event.reason,
  };
  set(attributes, ATTR_DB_NAMESPACE, event.database);
  set(attributes, 'meshgate.rule', event.rule);
  set(attributes, 'meshgate.role', event.upstreamRole);
  set(attributes, 'meshgate.upstream.connection_id', event.upstreamConnectionId);
  set(attributes, 'meshgate.tls.protocol', event.tls?.protocol);
  set(attributes, 'meshgate.refusals.repeats', event.repeats?.count);
  serverAttributes(attributes, event.engine === 'mysql' ? options.mysqlServer : options.firestoreServer);
  return attributes;
}

export function loginError(event: ConnectionEvent): SpanError | null {
  // A refusal's message is meshgate's own: it names no data.
  return event.error === null ? null : { type: String(event.error.code), message: event.error.message };
}

export function identityAttributes(identity: AuditIdentity): Attributes {
  return { 'meshgate.identity': identity.spiffeId, 'meshgate.auth_method': identity.authMethod };
}

/** SELECT; BATCH SELECT for several of one verb; BATCH for several verbs; the protocol command without SQL. */
function operationOf(event: StatementEvent): string | null {
  const verbs = event.verbs ?? (event.verb === null ? [] : [event.verb]);
  if (verbs.length > 1) return verbs.every((verb) => verb !== null && verb === verbs[0]) ? `BATCH ${verbs[0]}` : 'BATCH';
  return event.verb ?? event.command.toUpperCase();
}

function queryText(event: StatementEvent, mode: QueryTextMode): string | null {
  if (event.statement === null || mode === 'none') return null;
  // A cut text may end inside a literal; the sanitizer makes that `?` too.
  return mode === 'full' ? event.statement : sanitizeSql(event.statement);
}

function errorOf(error: AuditError | null, outcome: StatementEvent['outcome'], decision: 'allow' | 'deny', mode: QueryTextMode): SpanError | null {
  if (error === null) return outcome === 'completed' && decision === 'allow' ? null : { type: outcome, message: `${decision}, ${outcome}` };
  if (typeof error.code === 'string') return { type: error.code, message: error.message };
  // The upstream's error: its message may quote the data that caused it (a duplicate key).
  const state = error.sqlState === undefined ? '' : ` (SQLSTATE ${error.sqlState})`;
  return { type: String(error.code), message: mode === 'full' ? error.message : `error ${error.code}${state}` };
}

function spanName(operation: string | null, target: string | null, system: string): string {
  if (operation === null) return target ?? system;
  return target === null ? operation : `${operation} ${target}`;
}

function statusName(status: number): string {
  return GRPC_STATUS_NAMES.get(status) ?? String(status);
}

/** `google.firestore.v1.Firestore/RunQuery` → `RunQuery`. */
function methodName(method: string): string {
  return method.slice(method.lastIndexOf('/') + 1);
}

/** The collection every path is in (a document's parent, or the path itself for a collection), or null. */
function collectionOf(paths: readonly string[]): string | null {
  let found: string | null = null;
  for (const path of paths) {
    const segments = path.split('/');
    const collection = segments[(segments.length - 1) & ~1] ?? null;
    if (found !== null && collection !== found) return null;
    found = collection;
  }
  return found;
}

/** `orders/o-1/items/i-9` → `orders/?/items/?`: collection ids stay, document ids may be data. */
function sanitizePath(path: string): string {
  return path
    .split('/')
    .map((segment, i) => (i % 2 === 1 ? '?' : segment))
    .join('/');
}

function serverAttributes(attributes: Attributes, server: ServerAddress | undefined): void {
  if (server === undefined) return;
  attributes[ATTR_SERVER_ADDRESS] = server.address;
  attributes[ATTR_SERVER_PORT] = server.port;
}

function set(attributes: Attributes, key: string, value: AttributeValue | null | undefined): void {
  if (value !== null && value !== undefined) attributes[key] = value;
}
