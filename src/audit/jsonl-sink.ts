/**
 * The hash-chained JSONL audit sink. `record()` sits on the relay path of every statement,
 * so it only pushes onto an array; serializing, hashing and the appends happen in one write
 * loop, one batch at a time (a second concurrent append could interleave with the first and
 * break line order, and the chain with it).
 *
 * Durability (docs/audit-durability.md):
 *   strict    every batch is written and fdatasync'd before the next (group commit: what
 *             arrives during one sync is the next batch); whenDurable() callers, the data
 *             path, wait for their batch.
 *   buffered  batches gather for batchDelayMs and are written; fdatasync runs at most every
 *             syncIntervalMs. A queue past highWaterEvents holds sessions back; held longer
 *             than maxWaitMs, new operations are refused.
 * A failing write or sync (ENOSPC, EIO) makes the sink refuse new operations at once (said
 * once through onUnavailable), keeps every queued event, retries with backoff, and when a
 * write succeeds again chains a `recovered` event for the outage and calls onAvailable.
 */
import { open } from 'node:fs/promises';
import { mgError, type MeshgateError } from '../errors/index.ts';
import { eventBody, readChainTail, sealLine } from './chain.ts';
import { auditTime } from './clock.ts';
import { setTornTailAside, type TornTail } from './torn-tail.ts';
import type { AuditDurability, AuditEvent, AuditSink, RecoveredEvent } from './types.ts';

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
  /** seq of the last line written to the file. */
  readonly lastSeq: number;
}

interface Batch {
  readonly bytes: Buffer;
  /** Advances past partial writes, so a retry never duplicates bytes already appended. */
  offset: number;
  readonly count: number;
  readonly head: DurableHead;
}

interface Waiter {
  /** Recorded-event count that must be synced. */
  readonly target: number;
  /** Data-path waiters give up at an outage; flush and close wait it out. */
  readonly failFast: boolean;
  readonly callback: (error: MeshgateError | null) => void;
}

interface Outage {
  readonly since: number;
  /** The errno code of the failed write or sync, or 'backlog'. */
  readonly reason: string;
  unrecorded: number;
}

/** Audit files hold statement text: readable by the proxy's user only. */
const FILE_MODE = 0o600;

export async function openJsonlAuditSink(path: string, options: JsonlAuditSinkOptions = {}): Promise<JsonlAuditSink> {
  const highWater = options.highWaterEvents ?? 10_000;
  if (!Number.isSafeInteger(highWater) || highWater < 1) throw new TypeError('highWaterEvents must be a positive integer');
  const torn = await setTornTailAside(path);
  const resume = await readChainTail(path);
  const openFile = options.openFile ?? ((p: string) => open(p, 'a', FILE_MODE));
  let handle: AuditFileHandle;
  try {
    handle = await openFile(path);
  } catch (error) {
    throw mgError('MG_AUDIT_UNAVAILABLE', `cannot open the audit file ${path} for appending (${errorCode(error)})`, error);
  }
  const sink = new Sink(path, handle, resume, highWater, options);
  if (torn !== null) {
    const detail = `the file ended in a partial line (${torn.bytes} bytes${torn.type === null ? '' : `, a ${torn.type} event`}) left by a crash; it was set aside, not lost`;
    sink.record({ type: 'recovered', time: auditTime(), engine: null, sessionId: null, cause: 'torn_tail', detail, torn: { bytes: torn.bytes, sha256: torn.sha256, setAside: torn.setAside, nextSeq: resume.seq + 1 } });
    options.onTornTail?.(torn);
  }
  return sink;
}

class Sink implements JsonlAuditSink {
  readonly path: string;
  readonly durability: AuditDurability;
  #handle: AuditFileHandle;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #options: JsonlAuditSinkOptions;
  readonly #retryInitial: number;
  readonly #retryMax: number;
  readonly #maxBatch: number;
  readonly #batchDelay: number;
  readonly #maxWait: number;
  readonly #syncInterval: number;

  #queue: AuditEvent[] = [];
  #batch: Batch | null = null;
  #recorded = 0;
  #written = 0;
  #synced = 0;
  /** seq and hash of the last serialized line (written or in #batch). */
  #seq: number;
  #prev: string;
  #writtenHead: DurableHead;
  #scheduled = false;
  #running = false;
  #syncDue = false;
  #syncTimer: NodeJS.Timeout | null = null;
  #retryDelay: number;
  #backlogged = false;
  #backlogTimer: NodeJS.Timeout | null = null;
  #backlogRefusal: MeshgateError | null = null;
  #failure: MeshgateError | null = null;
  #outage: Outage | null = null;
  #drainListeners: Array<() => void> = [];
  #waiters: Waiter[] = [];
  #closed = false;
  #handleClosed = false;
  #closing: Promise<void> | null = null;

  constructor(path: string, handle: AuditFileHandle, resume: DurableHead, highWater: number, options: JsonlAuditSinkOptions) {
    this.path = path;
    this.durability = options.durability ?? 'buffered';
    this.#handle = handle;
    this.#seq = resume.seq;
    this.#prev = resume.hash;
    this.#writtenHead = resume;
    this.#highWater = highWater;
    // "Below half", and never 0: with highWaterEvents 1 the sink drains at an empty queue.
    this.#lowWater = Math.max(1, Math.ceil(highWater / 2));
    this.#options = options;
    this.#retryInitial = options.retryDelayMs?.initial ?? 50;
    this.#retryMax = options.retryDelayMs?.max ?? 1_000;
    this.#retryDelay = this.#retryInitial;
    this.#maxBatch = options.maxBatchEvents ?? 4096;
    this.#batchDelay = options.batchDelayMs ?? 5;
    this.#maxWait = options.maxWaitMs ?? 5_000;
    this.#syncInterval = options.syncIntervalMs ?? 1_000;
  }

  /** Sessions wait while this is true; never during an outage, when they are refused instead. */
  get backlogged(): boolean {
    return this.#backlogged && this.refusal === null;
  }

  get refusal(): MeshgateError | null {
    return this.#failure ?? this.#backlogRefusal;
  }

  get pending(): number {
    return this.#recorded - this.#written;
  }

  get lastSeq(): number {
    return this.#writtenHead.seq;
  }

  record(event: AuditEvent): void {
    if (this.#closed) {
      const what = `an audit event (${typeOf(event)}) was recorded after the sink for ${this.path} was closed; it is not in the file`;
      this.#report(mgError('MG_AUDIT_UNAVAILABLE', what));
      return;
    }
    // Refusals caused by the outage itself would each need the missing disk: once the queue
    // is full they are counted, and the count goes into the outage's `recovered` event.
    if (this.#outage !== null && this.#recorded - this.#written >= this.#highWater && refusedForAudit(event)) {
      this.#outage.unrecorded++;
      return;
    }
    this.#queue.push(event);
    this.#recorded++;
    if (!this.#backlogged && this.#recorded - this.#written >= this.#highWater) this.#startBacklog();
    this.#kick();
  }

  onDrain(listener: () => void): void {
    // A session that checked `backlogged` a moment before the drain must not wait forever.
    if (!this.backlogged) queueMicrotask(() => this.#call(listener));
    else this.#drainListeners.push(listener);
  }

  whenDurable(callback: (error: MeshgateError | null) => void): void {
    const refusal = this.#failure;
    if (refusal !== null) {
      queueMicrotask(() => callback(refusal));
      return;
    }
    this.#wait({ target: this.#recorded, failFast: true, callback });
  }

  flush(): Promise<void> {
    if (this.#handleClosed) return Promise.resolve();
    return new Promise<void>((resolve) => this.#wait({ target: this.#recorded, failFast: false, callback: () => resolve() }));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      try {
        await this.flush();
      } finally {
        this.#handleClosed = true;
        if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
        if (this.#backlogTimer !== null) clearTimeout(this.#backlogTimer);
        await this.#handle.close();
      }
    })();
    return this.#closing;
  }

  #wait(waiter: Waiter): void {
    if (waiter.target <= this.#synced) {
      queueMicrotask(() => waiter.callback(null));
      return;
    }
    this.#waiters.push(waiter);
    this.#syncDue = true;
    this.#kick();
  }

  #kick(): void {
    if (this.#running || this.#scheduled || this.#failure !== null) return;
    this.#scheduled = true;
    // strict: group commit needs no window, what arrives during a sync is the next batch.
    if (this.durability === 'strict' || this.#batchDelay === 0 || this.#backlogged || this.#syncDue) setImmediate(this.#start);
    else setTimeout(this.#start, this.#batchDelay);
  }

  readonly #start = (): void => {
    this.#scheduled = false;
    void this.#run();
  };

  /** The write loop: one step at a time, each failed step retried until it succeeds. */
  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (;;) {
        const step = this.#nextStep();
        if (step === null) break;
        try {
          await step();
          this.#succeeded();
        } catch (error) {
          this.#failed(error);
          const delay = this.#retryDelay;
          this.#retryDelay = Math.min(this.#retryMax, this.#retryDelay * 2);
          await new Promise((resolve) => setTimeout(resolve, delay));
          continue;
        }
        // buffered: what arrived during the write gathers for its own window first.
        if (step === this.#write && this.durability === 'buffered' && this.#batchDelay > 0 && !this.#backlogged && !this.#syncDue) break;
      }
    } finally {
      this.#running = false;
    }
    if (this.#queue.length > 0) this.#kick();
  }

  #nextStep(): (() => Promise<void>) | null {
    const strict = this.durability === 'strict';
    if (this.#synced < this.#written && (strict || this.#syncDue)) return this.#sync;
    if (this.#batch === null && this.#queue.length > 0) this.#batch = this.#serialize(this.#takeBatch());
    if (this.#batch !== null) return this.#write;
    this.#syncDue = false;
    return null;
  }

  readonly #write = async (): Promise<void> => {
    const batch = this.#batch!;
    while (batch.offset < batch.bytes.length) {
      const { bytesWritten } = await this.#handle.write(batch.bytes, batch.offset, batch.bytes.length - batch.offset);
      if (!(bytesWritten > 0)) throw new Error('the file accepted no bytes');
      batch.offset += bytesWritten;
    }
    this.#batch = null;
    this.#written += batch.count;
    this.#writtenHead = batch.head;
    await this.#afterBatch(batch);
    if (this.#backlogged && this.#recorded - this.#written < this.#lowWater) this.#endBacklog();
    if (this.durability === 'buffered' && this.#syncTimer === null) {
      this.#syncTimer = setTimeout(() => {
        this.#syncTimer = null;
        this.#syncDue = true;
        this.#kick();
      }, this.#syncInterval);
      this.#syncTimer.unref();
    }
  };

  /** The seal (checkpoints, anchor, rotation) sees each batch once it is in the file. */
  async #afterBatch(batch: Batch): Promise<void> {
    const hook = this.#options.afterBatch;
    if (hook === undefined) return;
    let to: AuditFileSwitch | null;
    try {
      to = await (hook(batch.head, batch.bytes.length) ?? null);
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (to === null) return;
    // The seal synced and sealed the old file before it handed over the new one.
    const old = this.#handle;
    this.#handle = to.handle;
    this.#seq = to.seq;
    this.#prev = to.hash;
    this.#writtenHead = { seq: to.seq, hash: to.hash };
    old.close().catch((error: unknown) => this.#report(mgError('MG_AUDIT_UNAVAILABLE', `closing the rotated audit file failed (${errorCode(error)})`, error)));
  }

  readonly #sync = async (): Promise<void> => {
    const written = this.#written;
    const head = this.#writtenHead;
    await this.#handle.datasync();
    this.#synced = written;
    this.#syncDue = this.#waiters.some((w) => w.target > this.#synced);
    const ready = this.#waiters.filter((w) => w.target <= written);
    this.#waiters = this.#waiters.filter((w) => w.target > written);
    for (const waiter of ready) waiter.callback(null);
    if (this.#options.onDurable !== undefined) this.#call(() => this.#options.onDurable!(head));
  };

  #takeBatch(): AuditEvent[] {
    if (this.#queue.length <= this.#maxBatch) {
      const batch = this.#queue;
      this.#queue = [];
      return batch;
    }
    return this.#queue.splice(0, this.#maxBatch);
  }

  /** Assigns seq in record order and hashes here, off the relay path. */
  #serialize(events: AuditEvent[]): Batch {
    const parts: string[] = [];
    let prev = this.#prev;
    let seq = this.#seq;
    for (const event of events) {
      seq++;
      let body: string;
      try {
        body = eventBody(event, seq, prev);
      } catch (error) {
        // A placeholder keeps the chain continuous and the loss visible in the file itself.
        this.#report(mgError('MG_AUDIT_UNAVAILABLE', `an audit event could not be serialized; seq ${seq} records the failure instead`, error));
        body = JSON.stringify({ type: 'unserializable', time: new Date().toISOString(), eventType: typeOf(event), seq, prev });
      }
      const sealed = sealLine(prev, body);
      parts.push(sealed.line);
      prev = sealed.hash;
    }
    this.#seq = seq;
    this.#prev = prev;
    return { bytes: Buffer.from(parts.join(''), 'utf8'), offset: 0, count: events.length, head: { seq, hash: prev } };
  }

  // ── outages: a failing disk, a backlog held too long ──────────────────────────────────

  #failed(error: unknown): void {
    if (this.#failure !== null) return;
    const what = this.#batch !== null ? 'appending to' : 'syncing';
    this.#failure = mgError(
      'MG_AUDIT_UNAVAILABLE',
      `meshgate cannot record audit events: ${what} the audit file ${this.path} failed (${errorCode(error)}); new operations are refused until it can, and it retries by itself`,
      error,
    );
    this.#beginOutage(errorCode(error));
    const failing = this.#waiters.filter((w) => w.failFast);
    this.#waiters = this.#waiters.filter((w) => !w.failFast);
    for (const waiter of failing) waiter.callback(this.#failure);
    if (this.#options.onUnavailable !== undefined) this.#call(() => this.#options.onUnavailable!(this.#failure!));
    else this.#report(this.#failure);
    this.#releaseHeld();
  }

  #succeeded(): void {
    // A sync that works says nothing of appends: the outage ends when the held batch is in.
    if (this.#failure === null || this.#batch !== null) return;
    this.#retryDelay = this.#retryInitial;
    this.#failure = null;
    this.#endOutage();
  }

  #startBacklog(): void {
    this.#backlogged = true;
    this.#backlogTimer ??= setTimeout(() => {
      this.#backlogTimer = null;
      if (!this.#backlogged || this.#backlogRefusal !== null) return;
      this.#backlogRefusal = mgError(
        'MG_AUDIT_UNAVAILABLE',
        `the audit file ${this.path} has taken no more events for ${this.#maxWait} ms (${this.#recorded - this.#written} queued, limit ${this.#highWater}); new operations are refused until it catches up`,
      );
      this.#beginOutage('backlog');
      if (this.#options.onUnavailable !== undefined) this.#call(() => this.#options.onUnavailable!(this.#backlogRefusal!));
      this.#releaseHeld();
    }, this.#maxWait);
    this.#backlogTimer.unref();
  }

  #endBacklog(): void {
    this.#backlogged = false;
    if (this.#backlogTimer !== null) clearTimeout(this.#backlogTimer);
    this.#backlogTimer = null;
    if (this.#backlogRefusal !== null) {
      this.#backlogRefusal = null;
      this.#endOutage();
    }
    this.#releaseHeld();
  }

  #beginOutage(reason: string): void {
    this.#outage ??= { since: Date.now(), reason, unrecorded: 0 };
  }

  /** Ends the outage when neither cause remains: a `recovered` event says how long, and what went unrecorded. */
  #endOutage(): void {
    const outage = this.#outage;
    if (outage === null || this.refusal !== null) return;
    this.#outage = null;
    const info = { since: new Date(outage.since).toISOString(), until: auditTime(), error: outage.reason, unrecorded: outage.unrecorded };
    const detail = `audit could not record events from ${info.since} to ${info.until} (${outage.reason}); operations were refused meanwhile${outage.unrecorded > 0 ? `, ${outage.unrecorded} refusals not written one by one` : ''}`;
    this.record({ type: 'recovered', time: info.until, engine: null, sessionId: null, cause: 'unavailable', detail, outage: info });
    if (this.#options.onAvailable !== undefined) this.#call(() => this.#options.onAvailable!(info));
  }

  /** Held sessions go on: to their next event once drained, or to a clear refusal during an outage. */
  #releaseHeld(): void {
    const listeners = this.#drainListeners;
    this.#drainListeners = [];
    for (const listener of listeners) this.#call(listener);
  }

  #call(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #report(err: Error): void {
    try {
      (this.#options.onError ?? ((e: Error) => process.emitWarning(e)))(err);
    } catch {
      // The reporter failing must not turn record() into a throwing call.
    }
  }
}

/** An event for an operation refused because audit is unavailable (it never went upstream). */
function refusedForAudit(event: AuditEvent): boolean {
  return 'decision' in event && event.decision === 'deny' && event.error?.code === 'MG_AUDIT_UNAVAILABLE';
}

function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

/** The event's type for error text, even from a malformed event (this runs off any try). */
function typeOf(event: unknown): string {
  try {
    return String((event as { type?: unknown } | null)?.type);
  } catch {
    return 'unknown';
  }
}
