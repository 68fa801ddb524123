/**
 * The parts of google.firestore.v1 messages that authorization and audit need, and nothing
 * more. Field numbers are Google's (firestore.proto, write.proto, query.proto, common.proto,
 * document.proto); a contract test checks each one against the protos that ship with
 * @google-cloud/firestore. Decoding a trimmed type skips every other field by its length,
 * so a large document costs a skip, not a parse; the bytes forwarded upstream are the
 * caller's own, never re-encoded.
 */
import protobuf from 'protobufjs';
import { checkUnambiguous } from './strict.ts';

export const TRIMMED_PROTO = `
syntax = "proto3";
package meshgate.firestore.v1;

message Document { string name = 1; }
message TransactionOptions {
  message ReadOnly {}
  message ReadWrite {}
  oneof mode {
    ReadOnly read_only = 2;
    ReadWrite read_write = 3;
  }
}
message StructuredQuery {
  message CollectionSelector { string collection_id = 2; bool all_descendants = 3; }
  repeated CollectionSelector from = 2;
}
message StructuredAggregationQuery { StructuredQuery structured_query = 1; }
message DocumentTransform { string document = 1; }
message Write {
  oneof operation {
    Document update = 1;
    string delete = 2;
    DocumentTransform transform = 6;
  }
}

message GetDocumentRequest { string name = 1; bytes transaction = 3; }
message ListDocumentsRequest { string parent = 1; string collection_id = 2; bytes transaction = 8; }
message CreateDocumentRequest { string parent = 1; string collection_id = 2; string document_id = 3; }
message UpdateDocumentRequest { Document document = 1; }
message DeleteDocumentRequest { string name = 1; }
message BatchGetDocumentsRequest {
  string database = 1;
  repeated string documents = 2;
  oneof consistency_selector {
    bytes transaction = 4;
    TransactionOptions new_transaction = 5;
  }
}
message BeginTransactionRequest { string database = 1; TransactionOptions options = 2; }
message CommitRequest { string database = 1; repeated Write writes = 2; bytes transaction = 3; }
message RollbackRequest { string database = 1; bytes transaction = 2; }
message RunQueryRequest {
  string parent = 1;
  StructuredQuery structured_query = 2;
  oneof consistency_selector {
    bytes transaction = 5;
    TransactionOptions new_transaction = 6;
  }
}
message RunAggregationQueryRequest {
  string parent = 1;
  StructuredAggregationQuery structured_aggregation_query = 2;
  oneof consistency_selector {
    bytes transaction = 4;
    TransactionOptions new_transaction = 5;
  }
}
message PartitionQueryRequest { string parent = 1; StructuredQuery structured_query = 2; }
message WriteRequest { string database = 1; repeated Write writes = 3; }
message Target {
  message DocumentsTarget { repeated string documents = 2; }
  message QueryTarget { string parent = 1; StructuredQuery structured_query = 2; }
  oneof target_type {
    QueryTarget query = 2;
    DocumentsTarget documents = 3;
  }
  int32 target_id = 5;
}
message ListenRequest {
  string database = 1;
  oneof target_change {
    Target add_target = 2;
    int32 remove_target = 3;
  }
}
message ListCollectionIdsRequest { string parent = 1; }
message BatchWriteRequest { string database = 1; repeated Write writes = 2; }

message ListDocumentsResponse { repeated Document documents = 1; }
message BatchGetDocumentsResponse { Document found = 1; string missing = 2; bytes transaction = 3; }
message RunQueryResponse { Document document = 1; bytes transaction = 2; }
message BeginTransactionResponse { bytes transaction = 1; }
message DocumentChange { Document document = 1; }
message Status { int32 code = 1; string message = 2; }
message TargetChange {
  enum TargetChangeType { NO_CHANGE = 0; ADD = 1; REMOVE = 2; CURRENT = 3; RESET = 4; }
  TargetChangeType target_change_type = 1;
  repeated int32 target_ids = 2;
  Status cause = 3;
}
message ListenResponse {
  TargetChange target_change = 2;
  DocumentChange document_change = 3;
}
`;

const root = protobuf.parse(TRIMMED_PROTO, { keepCase: true }).root;

export function trimmedType(name: string): protobuf.Type {
  return root.lookupType(`meshgate.firestore.v1.${name}`);
}

// The decoded shapes: proto3 defaults are '' / empty bytes / [] / null, as protobufjs gives them.
export interface DocumentMsg {
  readonly name: string;
}
export interface TransactionOptionsMsg {
  readonly read_only: object | null;
  readonly read_write: object | null;
}
export interface CollectionSelectorMsg {
  readonly collection_id: string;
  readonly all_descendants: boolean;
}
export interface StructuredQueryMsg {
  readonly from: readonly CollectionSelectorMsg[];
}
export interface WriteMsg {
  readonly update: DocumentMsg | null;
  readonly delete: string;
  readonly transform: { readonly document: string } | null;
}
export interface QueryTargetMsg {
  readonly parent: string;
  readonly structured_query: StructuredQueryMsg | null;
}

export interface RequestShapes {
  GetDocumentRequest: { name: string; transaction: Uint8Array };
  ListDocumentsRequest: { parent: string; collection_id: string; transaction: Uint8Array };
  CreateDocumentRequest: { parent: string; collection_id: string; document_id: string };
  UpdateDocumentRequest: { document: DocumentMsg | null };
  DeleteDocumentRequest: { name: string };
  BatchGetDocumentsRequest: { database: string; documents: string[]; transaction: Uint8Array; new_transaction: TransactionOptionsMsg | null };
  BeginTransactionRequest: { database: string; options: TransactionOptionsMsg | null };
  CommitRequest: { database: string; writes: WriteMsg[]; transaction: Uint8Array };
  RollbackRequest: { database: string; transaction: Uint8Array };
  RunQueryRequest: { parent: string; structured_query: StructuredQueryMsg | null; transaction: Uint8Array; new_transaction: TransactionOptionsMsg | null };
  RunAggregationQueryRequest: {
    parent: string;
    structured_aggregation_query: { structured_query: StructuredQueryMsg | null } | null;
    transaction: Uint8Array;
    new_transaction: TransactionOptionsMsg | null;
  };
  PartitionQueryRequest: { parent: string; structured_query: StructuredQueryMsg | null };
  WriteRequest: { database: string; writes: WriteMsg[] };
  ListenRequest: { database: string; add_target: { query: QueryTargetMsg | null; documents: { documents: string[] } | null; target_id: number } | null; remove_target: number };
  ListCollectionIdsRequest: { parent: string };
  BatchWriteRequest: { database: string; writes: WriteMsg[] };
}

const decoders = new Map<string, protobuf.Type>();

/**
 * Decodes a trimmed request. Throws MG_PACKET_MALFORMED for a message Google's parser
 * could read differently (see strict.ts), and protobufjs's error for bytes that are not
 * a message at all.
 */
export function decodeRequest<K extends keyof RequestShapes>(type: K, payload: Buffer): RequestShapes[K] {
  let decoder = decoders.get(type);
  if (decoder === undefined) {
    decoder = trimmedType(type);
    decoders.set(type, decoder);
  }
  checkUnambiguous(decoder, payload);
  return decoder.decode(payload) as unknown as RequestShapes[K];
}

const TARGET_REMOVED = 2; // TargetChange.TargetChangeType.REMOVE
const listenResponse = trimmedType('ListenResponse');

/**
 * What Firestore itself sends when it refuses a listen target: the target removed, with
 * the reason as its cause. The SDK reports that to the listener's error callback.
 */
export function encodeTargetRefusal(targetId: number, code: number, message: string): Buffer {
  const body = listenResponse.encode(listenResponse.fromObject({ target_change: { target_change_type: TARGET_REMOVED, target_ids: [targetId], cause: { code, message } } })).finish();
  return Buffer.from(body.buffer, body.byteOffset, body.length);
}
