/**
 * What a Firestore request touches: every path, with the kind of path and the operation
 * class policy judges. Pure: bytes in, a list out; a request whose bytes or names are
 * malformed throws MG_PACKET_MALFORMED and is refused whole.
 */
import { mgError } from '../../../errors/index.ts';
import { decodeRequest, type RequestShapes, type StructuredQueryMsg, type TransactionOptionsMsg, type WriteMsg } from './messages.ts';
import { checkCollectionId, joinPath, parseDatabaseName, parseDocumentsName, type DatabaseName } from './names.ts';

export type Operation = 'read' | 'write' | 'admin';
export type PathKind = 'document' | 'collection' | 'collection-group' | 'subtree';

export interface Access {
  readonly database: DatabaseName;
  /**
   * Inside the database: `orders/o1`, `orders`, for a collection group `orders/o1/**\/items`,
   * for a subtree (every collection at any depth) `orders/o1/**`; `**` alone is the database.
   */
  readonly path: string;
  readonly kind: PathKind;
  readonly operation: Operation;
}

export type Streaming = 'unary' | 'server' | 'bidi';

export interface MethodSpec {
  readonly name: string;
  readonly request: keyof RequestShapes;
  readonly streaming: Streaming;
}

/** The google.firestore.v1.Firestore methods meshgate serves; any other is refused. */
export const METHODS: ReadonlyMap<string, MethodSpec> = new Map(
  (
    [
      ['GetDocument', 'unary'],
      ['ListDocuments', 'unary'],
      ['CreateDocument', 'unary'],
      ['UpdateDocument', 'unary'],
      ['DeleteDocument', 'unary'],
      ['BatchGetDocuments', 'server'],
      ['BeginTransaction', 'unary'],
      ['Commit', 'unary'],
      ['Rollback', 'unary'],
      ['RunQuery', 'server'],
      ['RunAggregationQuery', 'server'],
      ['PartitionQuery', 'unary'],
      ['Write', 'bidi'],
      ['Listen', 'bidi'],
      ['ListCollectionIds', 'unary'],
      ['BatchWrite', 'unary'],
    ] as const
  ).map(([name, streaming]) => [`google.firestore.v1.Firestore/${name}`, { name, request: `${name}Request` as keyof RequestShapes, streaming }]),
);

/** What one request message asks for, beyond its paths. */
export interface RequestFacts {
  readonly accesses: readonly Access[];
  /** The database a pathless request (transactions) is about. */
  readonly database: DatabaseName;
  /** BeginTransaction / new_transaction: whether it asked for a read-only transaction. */
  readonly beginsTransaction: 'read-only' | 'read-write' | null;
  /** The transaction the request runs in, as hex; null when none. */
  readonly transaction: string | null;
  /** Writes the request carries (Commit, BatchWrite, Write). */
  readonly writes: number;
  /** Listen: the id of the target the message adds, so a refusal can name it. */
  readonly listenTargetId?: number;
}

function transactionMode(options: TransactionOptionsMsg | null): 'read-only' | 'read-write' | null {
  if (options === null) return null;
  return options.read_only !== null ? 'read-only' : 'read-write';
}

function hex(bytes: Uint8Array | undefined): string | null {
  return bytes === undefined || bytes.length === 0 ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

function documentAccess(name: string, operation: Operation, what: string): Access {
  const parsed = parseDocumentsName(name, what);
  if (parsed.segments === 0 || parsed.segments % 2 !== 0) {
    throw mgError('MG_PACKET_MALFORMED', `${what} ${JSON.stringify(name.slice(0, 120))} does not name a document (collection/document pairs)`);
  }
  return { database: parsed, path: parsed.path, kind: 'document', operation };
}

/** The parent of a query or listing: the database root or a document. */
function parentOf(name: string, what: string): { database: DatabaseName; path: string } {
  const parsed = parseDocumentsName(name, what);
  if (parsed.segments % 2 !== 0) {
    throw mgError('MG_PACKET_MALFORMED', `${what} ${JSON.stringify(name.slice(0, 120))} must be the documents root or a document`);
  }
  return { database: parsed, path: parsed.path };
}

/**
 * Everything beneath a parent, any collection at any depth. Asked for by a selector without a
 * collection id and by ListDocuments without one. Without allDescendants Firestore answers
 * such a request with one level only (the emulator does; Google's reference does not say),
 * so judging the whole subtree is never narrower than what can come back.
 */
function subtreeAccess(parent: { database: DatabaseName; path: string }, operation: Operation): Access {
  return { database: parent.database, path: joinPath(parent.path, '**'), kind: 'subtree', operation };
}

function queryAccesses(parentName: string, query: StructuredQueryMsg | null, operation: Operation, what: string): Access[] {
  const parent = parentOf(parentName, what);
  const from = query?.from ?? [];
  if (from.length === 0) throw mgError('MG_PACKET_MALFORMED', `${what}: a query must name the collection it reads (from)`);
  return from.map((selector) => {
    if (selector.collection_id === '') return subtreeAccess(parent, operation);
    const id = checkCollectionId(selector.collection_id, 'collection id');
    return selector.all_descendants
      ? { database: parent.database, path: joinPath(parent.path, `**/${id}`), kind: 'collection-group', operation }
      : { database: parent.database, path: joinPath(parent.path, id), kind: 'collection', operation };
  });
}

function writeAccesses(writes: readonly WriteMsg[]): Access[] {
  return writes.map((write, index) => {
    const name = write.update?.name || write.delete || write.transform?.document || '';
    return documentAccess(name, 'write', `writes[${index}]`);
  });
}

const NO_FACTS = { beginsTransaction: null, transaction: null, writes: 0 } as const;

/** Decodes one request message of `method` and lists what it touches. */
export function describeRequest(method: MethodSpec, payload: Buffer): RequestFacts {
  switch (method.request) {
    case 'GetDocumentRequest': {
      const r = decodeRequest('GetDocumentRequest', payload);
      const access = documentAccess(r.name, 'read', 'name');
      return { ...NO_FACTS, accesses: [access], database: access.database, transaction: hex(r.transaction) };
    }
    case 'ListDocumentsRequest': {
      const r = decodeRequest('ListDocumentsRequest', payload);
      const parent = parentOf(r.parent, 'parent');
      // Without a collection id Firestore lists the documents of every collection under the parent.
      const access: Access =
        r.collection_id === ''
          ? subtreeAccess(parent, 'read')
          : { database: parent.database, path: joinPath(parent.path, checkCollectionId(r.collection_id, 'collection_id')), kind: 'collection', operation: 'read' };
      return { ...NO_FACTS, accesses: [access], database: parent.database, transaction: hex(r.transaction) };
    }
    case 'CreateDocumentRequest': {
      const r = decodeRequest('CreateDocumentRequest', payload);
      const parent = parentOf(r.parent, 'parent');
      const collection = joinPath(parent.path, checkCollectionId(r.collection_id, 'collection_id'));
      // Without a document id Firestore picks one: any document of the collection.
      const access: Access =
        r.document_id === ''
          ? { database: parent.database, path: collection, kind: 'collection', operation: 'write' }
          : { database: parent.database, path: joinPath(collection, checkCollectionId(r.document_id, 'document_id')), kind: 'document', operation: 'write' };
      return { ...NO_FACTS, accesses: [access], database: parent.database, writes: 1 };
    }
    case 'UpdateDocumentRequest': {
      const r = decodeRequest('UpdateDocumentRequest', payload);
      const access = documentAccess(r.document?.name ?? '', 'write', 'document.name');
      return { ...NO_FACTS, accesses: [access], database: access.database, writes: 1 };
    }
    case 'DeleteDocumentRequest': {
      const r = decodeRequest('DeleteDocumentRequest', payload);
      const access = documentAccess(r.name, 'write', 'name');
      return { ...NO_FACTS, accesses: [access], database: access.database, writes: 1 };
    }
    case 'BatchGetDocumentsRequest': {
      const r = decodeRequest('BatchGetDocumentsRequest', payload);
      const database = parseDatabaseName(r.database);
      const accesses = r.documents.map((name, i) => documentAccess(name, 'read', `documents[${i}]`));
      return { accesses, database, beginsTransaction: transactionMode(r.new_transaction), transaction: hex(r.transaction), writes: 0 };
    }
    case 'BeginTransactionRequest': {
      const r = decodeRequest('BeginTransactionRequest', payload);
      return { ...NO_FACTS, accesses: [], database: parseDatabaseName(r.database), beginsTransaction: transactionMode(r.options) ?? 'read-write' };
    }
    case 'CommitRequest': {
      const r = decodeRequest('CommitRequest', payload);
      return { accesses: writeAccesses(r.writes), database: parseDatabaseName(r.database), beginsTransaction: null, transaction: hex(r.transaction), writes: r.writes.length };
    }
    case 'RollbackRequest': {
      const r = decodeRequest('RollbackRequest', payload);
      return { ...NO_FACTS, accesses: [], database: parseDatabaseName(r.database), transaction: hex(r.transaction) };
    }
    case 'RunQueryRequest': {
      const r = decodeRequest('RunQueryRequest', payload);
      const accesses = queryAccesses(r.parent, r.structured_query, 'read', 'parent');
      return { accesses, database: accesses[0]!.database, beginsTransaction: transactionMode(r.new_transaction), transaction: hex(r.transaction), writes: 0 };
    }
    case 'RunAggregationQueryRequest': {
      const r = decodeRequest('RunAggregationQueryRequest', payload);
      const accesses = queryAccesses(r.parent, r.structured_aggregation_query?.structured_query ?? null, 'read', 'parent');
      return { accesses, database: accesses[0]!.database, beginsTransaction: transactionMode(r.new_transaction), transaction: hex(r.transaction), writes: 0 };
    }
    case 'PartitionQueryRequest': {
      const r = decodeRequest('PartitionQueryRequest', payload);
      const accesses = queryAccesses(r.parent, r.structured_query, 'admin', 'parent');
      return { ...NO_FACTS, accesses, database: accesses[0]!.database };
    }
    case 'WriteRequest': {
      const r = decodeRequest('WriteRequest', payload);
      // Only the stream's first message must name the database; later ones may leave it empty.
      const accesses = writeAccesses(r.writes);
      const database = r.database === '' ? (accesses[0]?.database ?? { project: '', database: '' }) : parseDatabaseName(r.database);
      return { ...NO_FACTS, accesses, database, writes: r.writes.length };
    }
    case 'ListenRequest': {
      const r = decodeRequest('ListenRequest', payload);
      const database = parseDatabaseName(r.database);
      const target = r.add_target;
      if (target === null) return { ...NO_FACTS, accesses: [], database };
      const accesses =
        target.documents !== null
          ? target.documents.documents.map((name, i) => documentAccess(name, 'read', `add_target.documents[${i}]`))
          : target.query !== null
            ? queryAccesses(target.query.parent, target.query.structured_query, 'read', 'add_target.query.parent')
            : [];
      if (accesses.length === 0) throw mgError('MG_PACKET_MALFORMED', 'a Listen target must name documents or a query');
      return { ...NO_FACTS, accesses, database, listenTargetId: target.target_id };
    }
    case 'ListCollectionIdsRequest': {
      const r = decodeRequest('ListCollectionIdsRequest', payload);
      const parent = parentOf(r.parent, 'parent');
      // Collection ids under a document (or the root): judged as admin on that document.
      return { ...NO_FACTS, accesses: [{ database: parent.database, path: parent.path, kind: 'document', operation: 'admin' }], database: parent.database };
    }
    case 'BatchWriteRequest': {
      const r = decodeRequest('BatchWriteRequest', payload);
      return { ...NO_FACTS, accesses: writeAccesses(r.writes), database: parseDatabaseName(r.database), writes: r.writes.length };
    }
  }
}
