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
import { eventBody, LineBatch, readChainTail } from './chain.ts';
import { auditTime } from './clock.ts';
import { errorCode, SinkAvailability } from './jsonl-outage.ts';
import type { AuditFileHandle, AuditFileSwitch, DurableHead, JsonlAuditSink, JsonlAuditSinkOptions } from './jsonl-sink-types.ts';
import { setTornTailAside } from './torn-tail.ts';
import type { AuditDurability, AuditEvent } from './types.ts';

export type { AuditFileHandle, AuditFileSwitch, ChainHead, DurableHead, JsonlAuditSink, JsonlAuditSinkOptions } from './jsonl-sink-types.ts';

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
  readonly #options: JsonlAuditSinkOptions;
  readonly #maxBatch: number;
  readonly #batchDelay: number;
  readonly #syncInterval: number;
  /** Outages (a failing disk, a backlog held too long) and the backlog that holds sessions. */
  readonly #availability: SinkAvailability;

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
    this.#options = options;
    this.#maxBatch = options.maxBatchEvents ?? 4096;
    this.#batchDelay = options.batchDelayMs ?? 5;
    this.#syncInterval = options.syncIntervalMs ?? 1_000;
    this.#availability = new SinkAvailability(
      {
        path,
        queued: () => this.#recorded - this.#written,
        record: (event) => this.record(event),
        failWaiters: (error) => {
          const failing = this.#waiters.filter((w) => w.failFast);
          this.#waiters = this.#waiters.filter((w) => !w.failFast);
          for (const waiter of failing) waiter.callback(error);
        },
        releaseHeld: () => this.#releaseHeld(),
        call: (listener) => this.#call(listener),
        report: (err) => this.#report(err),
      },
      highWater,
      options,
    );
  }

  /** Sessions wait while this is true; never during an outage, when they are refused instead. */
  get backlogged(): boolean {
    return this.#availability.backlogged;
  }

  get refusal(): MeshgateError | null {
    return this.#availability.refusal;
  }

  get pending(): number {
    return this.#recorded - this.#written;
  }

  get backPressureSeconds(): number {
    return this.#availability.backPressureSeconds;
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
    if (this.#availability.absorbed(event)) return;
    this.#queue.push(event);
    this.#recorded++;
    this.#availability.afterQueued();
    this.#kick();
  }

  onDrain(listener: () => void): void {
    // A session that checked `backlogged` a moment before the drain must not wait forever.
    if (!this.backlogged) queueMicrotask(() => this.#call(listener));
    else this.#drainListeners.push(listener);
  }

  whenDurable(callback: (error: MeshgateError | null) => void): void {
    const refusal = this.#availability.failure;
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
        this.#availability.close();
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
    if (this.#running || this.#scheduled || this.#availability.failure !== null) return;
    this.#scheduled = true;
    // strict: group commit needs no window, what arrives during a sync is the next batch.
    if (this.durability === 'strict' || this.#batchDelay === 0 || this.#availability.inBacklog || this.#syncDue) setImmediate(this.#start);
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
          this.#availability.succeeded(this.#batch !== null);
        } catch (error) {
          this.#availability.failed(error, this.#batch !== null);
          const delay = this.#availability.nextRetryDelay();
          await new Promise((resolve) => setTimeout(resolve, delay));
          continue;
        }
        // buffered: what arrived during the write gathers for its own window first.
        if (step === this.#write && this.durability === 'buffered' && this.#batchDelay > 0 && !this.#availability.inBacklog && !this.#syncDue) break;
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
    this.#availability.afterWritten();
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
    // Statement events run about a kilobyte each.
    const lines = new LineBatch(events.length * 1024);
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
      prev = lines.seal(prev, body);
    }
    this.#seq = seq;
    this.#prev = prev;
    return { bytes: lines.bytes(), offset: 0, count: events.length, head: { seq, hash: prev } };
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

/** The event's type for error text, even from a malformed event (this runs off any try). */
function typeOf(event: unknown): string {
  try {
    return String((event as { type?: unknown } | null)?.type);
  } catch {
    return 'unknown';
  }
}
