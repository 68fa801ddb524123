import type { AuditSink } from '../../audit/types.ts';
import type { CompiledPolicy } from '../../policy/types.ts';
import type { Logger } from '../../log.ts';
import type { ReadOnlyTransactions } from './transactions.ts';
import type { FirestoreUpstream } from './upstream.ts';

/** Everything a Firestore call needs from the rest of meshgate. */
export interface FirestoreEngineContext {
  /** The one Google Cloud project callers may name. */
  readonly project: string;
  policy(): CompiledPolicy;
  readonly upstream: FirestoreUpstream;
  readonly transactions: ReadOnlyTransactions;
  readonly audit: AuditSink;
  readonly log: Logger;
  readonly maxMessageBytes: number;
  readonly maxResponseMessageBytes: number;
}
