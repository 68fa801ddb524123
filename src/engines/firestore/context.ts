import type { AuditRecorder } from '../../audit/index.ts';
import type { Logger } from '../../log.ts';
import type { PolicySource } from '../../policy/index.ts';
import type { Throttle, UpstreamBudget } from '../../throttle/index.ts';
import type { ReadOnlyTransactions } from './transactions.ts';
import type { FirestoreUpstream } from './upstream.ts';

/** Everything a Firestore call needs from the rest of meshgate: its settings and its stages. */
export interface FirestoreEngineContext {
  /** The one Google Cloud project callers may name. */
  readonly project: string;
  readonly policy: PolicySource;
  readonly throttle: Throttle;
  /** throttle.firestore: a call holds one of these streams until it ends; null: no budget. */
  readonly streams: UpstreamBudget | null;
  readonly upstream: FirestoreUpstream;
  readonly transactions: ReadOnlyTransactions;
  readonly audit: AuditRecorder;
  readonly log: Logger;
  readonly maxMessageBytes: number;
  readonly maxResponseMessageBytes: number;
  /** firestore.timeouts.request: headers to a whole request (a stream's first message). */
  readonly requestTimeoutMs: number;
  /** firestore.timeouts.drain: how long a call that writes waits for its answer once its caller left. */
  readonly drainTimeoutMs: number;
}
