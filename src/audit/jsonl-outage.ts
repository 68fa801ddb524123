/**
 * Whether the JSONL audit sink takes new operations. Two causes refuse them: a failing write
 * or sync (ENOSPC, EIO), retried with backoff, and a backlog held past maxWaitMs. One outage
 * spans both; it ends when neither remains, with a `recovered` event chained into the log
 * that says how long it lasted and how many refusals went unrecorded one by one.
 *
 * The write loop (src/audit/jsonl-sink.ts) tells this state what happened; the state tells
 * the sink, through its host, which waiters to fail and when held sessions go on.
 */
import { mgError, type MeshgateError } from '../errors/index.ts';
import { auditTime } from './clock.ts';
import type { JsonlAuditSinkOptions } from './jsonl-sink-types.ts';
import type { AuditEvent } from './types.ts';

/** What the outage state needs of the sink it belongs to. */
export interface OutageHost {
  readonly path: string;
  /** Recorded events not yet written (including a batch being written). */
  queued(): number;
  record(event: AuditEvent): void;
  /** Data-path waiters give up at an outage; flush and close wait it out. */
  failWaiters(error: MeshgateError): void;
  /** Held sessions go on: to their next event once drained, or to a clear refusal. */
  releaseHeld(): void;
  /** Runs a listener, its exceptions reported, never thrown. */
  call(listener: () => void): void;
  report(err: Error): void;
}

interface Outage {
  readonly since: number;
  /** The errno code of the failed write or sync, or 'backlog'. */
  readonly reason: string;
  unrecorded: number;
}

export class SinkAvailability {
  readonly #host: OutageHost;
  readonly #options: JsonlAuditSinkOptions;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #maxWait: number;
  readonly #retryInitial: number;
  readonly #retryMax: number;
  #retryDelay: number;
  #backlogged = false;
  #backlogTimer: NodeJS.Timeout | null = null;
  #backlogRefusal: MeshgateError | null = null;
  #failure: MeshgateError | null = null;
  #outage: Outage | null = null;
  /** Back-pressure: when the current backlog began (performance.now()), and the earlier ones' total. */
  #backlogSince: number | null = null;
  #backlogMs = 0;

  constructor(host: OutageHost, highWater: number, options: JsonlAuditSinkOptions) {
    this.#host = host;
    this.#options = options;
    this.#highWater = highWater;
    // "Below half", and never 0: with highWaterEvents 1 the sink drains at an empty queue.
    this.#lowWater = Math.max(1, Math.ceil(highWater / 2));
    this.#maxWait = options.maxWaitMs ?? 5_000;
    this.#retryInitial = options.retryDelayMs?.initial ?? 50;
    this.#retryMax = options.retryDelayMs?.max ?? 1_000;
    this.#retryDelay = this.#retryInitial;
  }

  /** The failing disk's refusal, while the write or sync fails. */
  get failure(): MeshgateError | null {
    return this.#failure;
  }

  get refusal(): MeshgateError | null {
    return this.#failure ?? this.#backlogRefusal;
  }

  /** The queue is past high water and has not yet drained below low water. */
  get inBacklog(): boolean {
    return this.#backlogged;
  }

  /** Sessions wait while this is true; never during an outage, when they are refused instead. */
  get backlogged(): boolean {
    return this.#backlogged && this.refusal === null;
  }

  /**
   * Refusals caused by the outage itself would each need the missing disk: once the queue is
   * full they are counted instead of queued (true), and the count goes into the outage's
   * `recovered` event.
   */
  absorbed(event: AuditEvent): boolean {
    if (this.#outage === null || this.#host.queued() < this.#highWater || !refusedForAudit(event)) return false;
    this.#outage.unrecorded++;
    return true;
  }

  /** After an event is queued. */
  afterQueued(): void {
    if (!this.#backlogged && this.#host.queued() >= this.#highWater) this.#startBacklog();
  }

  /** After a batch is in the file. */
  afterWritten(): void {
    if (this.#backlogged && this.#host.queued() < this.#lowWater) this.#endBacklog();
  }

  /** How long sessions have been held back by backlogs in all, the current one included (metrics). */
  get backPressureSeconds(): number {
    const current = this.#backlogSince === null ? 0 : performance.now() - this.#backlogSince;
    return (this.#backlogMs + current) / 1000;
  }

  /** How long to wait before retrying a failed step; each call doubles the next, up to the maximum. */
  nextRetryDelay(): number {
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(this.#retryMax, this.#retryDelay * 2);
    return delay;
  }

  /** A write (`appending`) or sync failed. */
  failed(error: unknown, appending: boolean): void {
    if (this.#failure !== null) return;
    const what = appending ? 'appending to' : 'syncing';
    this.#failure = mgError(
      'MG_AUDIT_UNAVAILABLE',
      `meshgate cannot record audit events: ${what} the audit file ${this.#host.path} failed (${errorCode(error)}); new operations are refused until it can, and it retries by itself`,
      error,
    );
    this.#beginOutage(errorCode(error));
    this.#host.failWaiters(this.#failure);
    if (this.#options.onUnavailable !== undefined) this.#host.call(() => this.#options.onUnavailable!(this.#failure!));
    else this.#host.report(this.#failure);
    this.#host.releaseHeld();
  }

  /** A step succeeded; `batchHeld` while a batch is still waiting to be appended. */
  succeeded(batchHeld: boolean): void {
    // A sync that works says nothing of appends: the outage ends when the held batch is in.
    if (this.#failure === null || batchHeld) return;
    this.#retryDelay = this.#retryInitial;
    this.#failure = null;
    this.#endOutage();
  }

  close(): void {
    if (this.#backlogTimer !== null) clearTimeout(this.#backlogTimer);
  }

  #startBacklog(): void {
    this.#backlogged = true;
    this.#backlogSince = performance.now();
    this.#backlogTimer ??= setTimeout(() => {
      this.#backlogTimer = null;
      if (!this.#backlogged || this.#backlogRefusal !== null) return;
      this.#backlogRefusal = mgError(
        'MG_AUDIT_UNAVAILABLE',
        `the audit file ${this.#host.path} has taken no more events for ${this.#maxWait} ms (${this.#host.queued()} queued, limit ${this.#highWater}); new operations are refused until it catches up`,
      );
      this.#beginOutage('backlog');
      if (this.#options.onUnavailable !== undefined) this.#host.call(() => this.#options.onUnavailable!(this.#backlogRefusal!));
      this.#host.releaseHeld();
    }, this.#maxWait);
    this.#backlogTimer.unref();
  }

  #endBacklog(): void {
    this.#backlogged = false;
    if (this.#backlogSince !== null) this.#backlogMs += performance.now() - this.#backlogSince;
    this.#backlogSince = null;
    if (this.#backlogTimer !== null) clearTimeout(this.#backlogTimer);
    this.#backlogTimer = null;
    if (this.#backlogRefusal !== null) {
      this.#backlogRefusal = null;
      this.#endOutage();
    }
    this.#host.releaseHeld();
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
    this.#host.record({ type: 'recovered', time: info.until, engine: null, sessionId: null, cause: 'unavailable', detail, outage: info });
    if (this.#options.onAvailable !== undefined) this.#host.call(() => this.#options.onAvailable!(info));
  }
}

/** An event for an operation refused because audit is unavailable (it never went upstream). */
function refusedForAudit(event: AuditEvent): boolean {
  return 'decision' in event && event.decision === 'deny' && event.error?.code === 'MG_AUDIT_UNAVAILABLE';
}

/** The errno code of a failed file operation, or its message. */
export function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}
