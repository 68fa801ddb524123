/**
 * What the audit event counts from Firestore's answers: documents returned, and the
 * transaction a read-only BeginTransaction (or a query's new_transaction) opened.
 */
import type { MethodSpec } from './access.ts';
import { trimmedType } from './messages.ts';

export interface ResponseCount {
  readonly documents: number;
  /** Hex id of a transaction the response opened; null when none. */
  readonly transaction: string | null;
}

const NONE: ResponseCount = { documents: 0, transaction: null };
const types = {
  ListDocuments: trimmedType('ListDocumentsResponse'),
  BatchGetDocuments: trimmedType('BatchGetDocumentsResponse'),
  RunQuery: trimmedType('RunQueryResponse'),
  BeginTransaction: trimmedType('BeginTransactionResponse'),
  Listen: trimmedType('ListenResponse'),
};

function hex(bytes: Uint8Array | undefined): string | null {
  return bytes === undefined || bytes.length === 0 ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function countResponse(spec: MethodSpec, payload: Buffer): ResponseCount {
  switch (spec.name) {
    case 'GetDocument':
      return { documents: 1, transaction: null };
    case 'ListDocuments':
      return { documents: (types.ListDocuments.decode(payload) as unknown as { documents: unknown[] }).documents.length, transaction: null };
    case 'BatchGetDocuments': {
      const r = types.BatchGetDocuments.decode(payload) as unknown as { found: object | null; transaction: Uint8Array };
      return { documents: r.found === null ? 0 : 1, transaction: hex(r.transaction) };
    }
    case 'RunQuery': {
      const r = types.RunQuery.decode(payload) as unknown as { document: object | null; transaction: Uint8Array };
      return { documents: r.document === null ? 0 : 1, transaction: hex(r.transaction) };
    }
    case 'BeginTransaction':
      return { documents: 0, transaction: hex((types.BeginTransaction.decode(payload) as unknown as { transaction: Uint8Array }).transaction) };
    case 'Listen':
      return { documents: (types.Listen.decode(payload) as unknown as { document_change: object | null }).document_change === null ? 0 : 1, transaction: null };
    default:
      return NONE;
  }
}
