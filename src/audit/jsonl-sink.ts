/**
 * The hash-chained JSONL audit sink. `record()` sits on the relay path of every statement,
 * so it only pushes onto an array; serializing, hashing and the single append per batch
 * happen later on the event loop, with at most one write in flight (a second concurrent
 * append could interleave with the first and break line order, and the chain with it).
 */
import { open } from 'node:fs/promises';
import { mgError } from '../errors/index.ts';
import { eventBody, readChainTail, sealLine } from './chain.ts';
import type { AuditEvent, AuditSink } from './types.ts';

/** The slice of fs.promises.FileHandle the sink uses; tests substitute slow or failing ones. */
export interface AuditFileHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface JsonlAuditSinkOptions {
  /** Queued-but-unwritten events at which `backlogged` turns true. Default 10000. */
  highWaterEvents?: number;
  /** Write failures, events recorded after close, listener exceptions. Default: process warning. */
  onError?: (err: Error) => void;
  /** Opens the file for appending. Default: fs.promises.open(path, 'a', 0o600). */
  openFile?: (path: string) => Promise<AuditFileHandle>;
  /** Backoff between retries of a failed write. Default 50 ms doubling to 5 s. */
  retryDelayMs?: { readonly initial: number; readonly max: number };
  /** Most events serialized into one write, so a long backlog is not one giant string. */
  maxBatchEvents?: number;
  /**
   * How long events may gather before a write starts (default 5 ms). Each write is a
   * thread-pool round trip; under load, gathering turns thousands of them a second into a
   * few hundred, which is CPU the relay gets back. 0 writes on the next event-loop turn.
   */
  batchDelayMs?: number;
  /**
   * Told the chain head and the bytes appended after each batch is in the file: signed
   * checkpoints, the anchor and rotation hang here (src/audit/seal.ts). null lets writing go
   * straight on; a promise holds the next write until it settles, and a file it gives is
   * where the chain continues (the sink closes the old one).
   */
  afterBatch?: (head: ChainHead, bytes: number) => Promise<AuditFileSwitch | null> | null;
}

/** The last line written: its seq and chain hash. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** A file to continue in, its chain already begun (its first line, the file header, is `seq` with hash `hash`). */
export interface AuditFileSwitch {
  readonly handle: AuditFileHandle;
  readonly seq: number;
  readonly hash: string;
}

export interface JsonlAuditSink extends AuditSink {
  readonly path: string;
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
}

interface FlushWaiter {
  readonly target: number;
  readonly resolve: () => void;
}

/** Audit files hold statement text: readable by the proxy's user only. */
const FILE_MODE = 0o600;

export async function openJsonlAuditSink(path: string, options: JsonlAuditSinkOptions = {}): Promise<JsonlAuditSink> {
  const highWater = options.highWaterEvents ?? 10_000;
  if (!Number.isSafeInteger(highWater) || highWater < 1) throw new TypeError('highWaterEvents must be a positive integer');
  const resume = await readChainTail(path);
  const openFile = options.openFile ?? ((p: string) => open(p, 'a', FILE_MODE));
  let handle: AuditFileHandle;
  try {
    handle = await openFile(path);
  } catch (error) {
    throw mgError('MG_AUDIT_UNAVAILABLE', `cannot open the audit file ${path} for appending (${errorCode(error)})`, error);
  }
  return new Sink(path, handle, resume.seq, resume.hash, highWater, options);
}

class Sink implements JsonlAuditSink {
  readonly path: string;
  #handle: AuditFileHandle;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #onError: (err: Error) => void;
  readonly #retryInitial: number;
  readonly #retryMax: number;
  readonly #maxBatch: number;
  readonly #batchDelay: number;
  readonly #afterBatch: JsonlAuditSinkOptions['afterBatch'];

  #queue: AuditEvent[] = [];
  #batch: Batch | null = null;
  #recorded = 0;
  #written = 0;
  /** seq and hash of the last serialized line (written or in #batch). */
  #seq: number;
  #prev: string;
  #writtenSeq: number;
  #scheduled = false;
  #writing = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryDelay: number;
  #backlogged = false;
  #drainListeners: Array<() => void> = [];
  #flushWaiters: FlushWaiter[] = [];
  #closed = false;
  #handleClosed = false;
  #closing: Promise<void> | null = null;

  constructor(path: string, handle: AuditFileHandle, seq: number, prev: string, highWater: number, options: JsonlAuditSinkOptions) {
    this.path = path;
    this.#handle = handle;
    this.#seq = seq;
    this.#writtenSeq = seq;
    this.#prev = prev;
    this.#highWater = highWater;
    // "Below half", and never 0: with highWaterEvents 1 the sink drains at an empty queue.
    this.#lowWater = Math.max(1, Math.ceil(highWater / 2));
    this.#onError = options.onError ?? ((err) => process.emitWarning(err));
    this.#retryInitial = options.retryDelayMs?.initial ?? 50;
    this.#retryMax = options.retryDelayMs?.max ?? 5_000;
    this.#retryDelay = this.#retryInitial;
    this.#maxBatch = options.maxBatchEvents ?? 4096;
    this.#batchDelay = options.batchDelayMs ?? 5;
    this.#afterBatch = options.afterBatch;
  }

  get backlogged(): boolean {
    return this.#backlogged;
  }

  get pending(): number {
    return this.#recorded - this.#written;
  }

  get lastSeq(): number {
    return this.#writtenSeq;
  }

  record(event: AuditEvent): void {
    if (this.#closed) {
      const what = `an audit event (${typeOf(event)}) was recorded after the sink for ${this.path} was closed; it is not in the file`;
      this.#report(mgError('MG_AUDIT_UNAVAILABLE', what));
      return;
    }
    this.#queue.push(event);
    this.#recorded++;
    if (!this.#backlogged && this.#recorded - this.#written >= this.#highWater) this.#backlogged = true;
    if (!this.#scheduled && !this.#writing && this.#retryTimer === null) this.#schedule();
  }

  #schedule(): void {
    this.#scheduled = true;
    // A backlog is written as fast as the disk takes it; otherwise events gather briefly.
    if (this.#batchDelay === 0 || this.#backlogged) setImmediate(this.#pump);
    else setTimeout(this.#pump, this.#batchDelay);
  }

  onDrain(listener: () => void): void {
    // A session that checked `backlogged` a moment before the drain must not wait forever.
    if (!this.#backlogged) queueMicrotask(() => this.#call(listener));
    else this.#drainListeners.push(listener);
  }

  async flush(): Promise<void> {
    if (this.#handleClosed) return;
    const target = this.#recorded;
    if (this.#written < target) {
      await new Promise<void>((resolve) => this.#flushWaiters.push({ target, resolve }));
    }
    try {
      await this.#handle.datasync();
    } catch (error) {
      const err = mgError('MG_AUDIT_UNAVAILABLE', `syncing the audit file ${this.path} to disk failed (${errorCode(error)})`, error);
      this.#report(err);
      throw err;
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      try {
        await this.flush();
      } finally {
        this.#handleClosed = true;
        await this.#handle.close();
      }
    })();
    return this.#closing;
  }

  readonly #pump = (): void => {
    this.#scheduled = false;
    if (this.#writing) return;
    if (this.#batch === null) {
      if (this.#queue.length === 0) return;
      this.#batch = this.#serialize(this.#takeBatch());
    }
    this.#writing = true;
    this.#writeBatch(this.#batch).then(this.#onWritten, this.#onWriteFailed);
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
    return { bytes: Buffer.from(parts.join(''), 'utf8'), offset: 0, count: events.length };
  }

  async #writeBatch(batch: Batch): Promise<void> {
    while (batch.offset < batch.bytes.length) {
      const { bytesWritten } = await this.#handle.write(batch.bytes, batch.offset, batch.bytes.length - batch.offset);
      if (!(bytesWritten > 0)) throw new Error('the file accepted no bytes');
      batch.offset += bytesWritten;
    }
  }

  readonly #onWritten = (): void => {
    const batch = this.#batch;
    const after = batch === null || this.#afterBatch === undefined ? null : this.#callAfterBatch(batch);
    if (after === null) this.#finishWrite();
    else after.then(this.#finishWrite);
  };

  /** Runs the afterBatch hook; #writing stays true meanwhile, so nothing else is written. */
  #callAfterBatch(batch: Batch): Promise<void> | null {
    let next: Promise<AuditFileSwitch | null> | null;
    try {
      next = this.#afterBatch!({ seq: this.#seq, hash: this.#prev }, batch.bytes.length);
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)));
      return null;
    }
    if (next === null) return null;
    return next.then(
      (to) => {
        if (to === null) return;
        const old = this.#handle;
        this.#handle = to.handle;
        this.#seq = to.seq;
        this.#prev = to.hash;
        old.close().catch((error: unknown) => this.#report(mgError('MG_AUDIT_UNAVAILABLE', `closing the rotated audit file failed (${errorCode(error)})`, error)));
      },
      (error: unknown) => this.#report(error instanceof Error ? error : new Error(String(error))),
    );
  }

  readonly #finishWrite = (): void => {
    const batch = this.#batch;
    this.#batch = null;
    this.#writing = false;
    this.#retryDelay = this.#retryInitial;
    if (batch !== null) {
      this.#written += batch.count;
      // The batch's last line, or the new file's header when afterBatch moved to one.
      this.#writtenSeq = this.#seq;
    }
    if (this.#backlogged && this.#recorded - this.#written < this.#lowWater) {
      this.#backlogged = false;
      const listeners = this.#drainListeners;
      this.#drainListeners = [];
      for (const listener of listeners) this.#call(listener);
    }
    if (this.#flushWaiters.length > 0) {
      const ready = this.#flushWaiters.filter((w) => w.target <= this.#written);
      this.#flushWaiters = this.#flushWaiters.filter((w) => w.target > this.#written);
      for (const waiter of ready) waiter.resolve();
    }
    // Events recorded during the write form the next batch.
    if (this.#queue.length > 0 && !this.#scheduled) this.#schedule();
  };

  readonly #onWriteFailed = (error: unknown): void => {
    this.#writing = false;
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(this.#retryMax, this.#retryDelay * 2);
    this.#report(
      mgError('MG_AUDIT_UNAVAILABLE', `appending to the audit file ${this.path} failed (${errorCode(error)}); ${this.pending} events held, retrying in ${delay} ms`, error),
    );
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#pump();
    }, delay);
  };

  #call(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #report(err: Error): void {
    try {
      this.#onError(err);
    } catch {
      // The reporter failing must not turn record() into a throwing call.
    }
  }
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
