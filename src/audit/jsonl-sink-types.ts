/**
 * The public shapes of the JSONL audit sink (src/audit/jsonl-sink.ts re-exports them): its
 * options, the file handle it writes through, and the chain heads it reports.
 */
import type { MeshgateError } from '../errors/index.ts';
import type { TornTail } from './torn-tail.ts';
import type { AuditDurability, AuditSink, RecoveredEvent } from './types.ts';

/** The slice of fs.promises.FileHandle the sink uses; tests substitute slow or failing ones. */
export interface AuditFileHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** The chain head the file holds, synced: a seam for checkpoints and anchors. */
export interface DurableHead {
  readonly seq: number;
  readonly hash: string;
}

/** The last line written: its seq and chain hash. */
export type ChainHead = DurableHead;

/** A file to continue in, its chain already begun (its first line, the file header, is `seq` with hash `hash`). */
export interface AuditFileSwitch {
  readonly handle: AuditFileHandle;
  readonly seq: number;
  readonly hash: string;
}

export interface JsonlAuditSinkOptions {
  /** Default 'buffered' here; the config's default is in config/schema.ts. */
  durability?: AuditDurability;
  /** Queued-but-unwritten events at which `backlogged` turns true. Default 10000. */
  highWaterEvents?: number;
  /** How long a backlog may hold sessions before new operations are refused. Default 5000 ms. */
  maxWaitMs?: number;
  /** buffered: the longest written events stay unsynced. Default 1000 ms. */
  syncIntervalMs?: number;
  /** Events recorded after close, unserializable events, listener exceptions. Default: process warning. */
  onError?: (err: Error) => void;
  /** Once per outage, when it begins: the sink refuses new operations with `err` until onAvailable. */
  onUnavailable?: (err: MeshgateError) => void;
  /** Once per outage, when events flow again. */
  onAvailable?: (outage: NonNullable<RecoveredEvent['outage']>) => void;
  /** At open, when a partial last line was set aside (a `recovered` event records it too). */
  onTornTail?: (torn: TornTail) => void;
  /** After each fdatasync, with the chain head it made durable. Exceptions go to onError. */
  onDurable?: (head: DurableHead) => void;
  /**
   * Told the chain head and the bytes appended after each batch is in the file: signed
   * checkpoints, the anchor and rotation hang here (src/audit/seal.ts). null lets writing go
   * straight on; a promise holds the next write until it settles, and a file it gives is
   * where the chain continues (the sink closes the old one).
   */
  afterBatch?: (head: ChainHead, bytes: number) => Promise<AuditFileSwitch | null> | null;
  /** Opens the file for appending. Default: fs.promises.open(path, 'a', 0o600). */
  openFile?: (path: string) => Promise<AuditFileHandle>;
  /** Backoff between retries of a failed write or sync. Default 50 ms doubling to 1 s: recovery is prompt once space returns. */
  retryDelayMs?: { readonly initial: number; readonly max: number };
  /** Most events serialized into one write, so a long backlog is not one giant string. */
  maxBatchEvents?: number;
  /**
   * buffered: how long events may gather before a write starts (default 5 ms). Each write is
   * a thread-pool round trip; under load, gathering turns thousands of them a second into a
   * few hundred, which is CPU the relay gets back. 0 writes on the next event-loop turn.
   */
  batchDelayMs?: number;
}

export interface JsonlAuditSink extends AuditSink {
  readonly path: string;
  readonly durability: AuditDurability;
  readonly refusal: MeshgateError | null;
  whenDurable(callback: (error: MeshgateError | null) => void): void;
  /** Recorded events not yet on disk (including a batch being written). */
  readonly pending: number;
  /** How long sessions were held back by backlogs in all, in seconds (the current one included). */
  readonly backPressureSeconds: number;
  /** seq of the last line written to the file. */
  readonly lastSeq: number;
}
