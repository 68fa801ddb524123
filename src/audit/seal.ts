/**
 * What a hash chain alone cannot give the audit log: signed checkpoints, the head anchored in
 * the state store, and rotation. It hangs on the JSONL sink's afterBatch hook: told each
 * chain head once its batch is in the file, it signs a checkpoint every N events or T seconds
 * (and at rotation and shutdown), anchors it, and closes the file when it is too large or too
 * old. Only rotation holds the sink; checkpoints and anchors are written beside it, each
 * after the lines it names are synced to disk, so none names a line a power cut can take back.
 *
 * At start it checks the files against the last checkpoint and the anchor, and refuses to
 * write on top of a log that was cut short, rebuilt or replaced (as the sink refuses a damaged
 * last line): new lines would bury the damage.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { mgError } from '../errors/index.ts';
import { syncDir, writeAtomic } from '../fs-atomic.ts';
import type { AuditAnchorInput, AuditAnchorStore } from '../store/index.ts';
import { eventBody, sealLine } from './chain.ts';
import { CHECKPOINT_GENESIS, signCheckpoint, type CheckpointReason, type SupersededLog } from './checkpoint.ts';
import type { AuditFileSwitch, ChainHead } from './jsonl-sink.ts';
import { FILE_HEADER_TYPE, firstLine, logLayout, sizeOf, type FileHeader, type LogLayout } from './log-files.ts';
import { inspectLog, type LogState } from './seal-start.ts';
import type { AuditSigner } from './signing-key.ts';

export interface AuditSealOptions {
  /** The active audit file (config audit.file). */
  readonly file: string;
  /** Signs checkpoints into `<stem>.checkpoints.jsonl`; without it none are written. */
  readonly signer?: AuditSigner;
  /** Where the head is anchored, under which id; `ownsStore`: close it with the seal. */
  readonly anchors?: { readonly store: AuditAnchorStore; readonly id: string; readonly ownsStore?: boolean };
  /** Default every 1000 events or 10 s, whichever comes first. */
  readonly checkpointEvery?: { readonly events: number; readonly intervalMs: number };
  readonly rotate?: { readonly maxBytes?: number; readonly maxAgeMs?: number };
  readonly now?: () => number;
  /** A checkpoint, anchor or rotation that failed (writing goes on). Default: process warning. */
  readonly onError?: (err: Error) => void;
  /** Something an operator should know that is not a failure (a new log replacing an old one). */
  readonly onWarning?: (message: string) => void;
}

export interface AuditSeal {
  /** Pass as the sink's afterBatch option. */
  readonly afterBatch: (head: ChainHead, bytes: number) => Promise<AuditFileSwitch | null> | null;
  /** Checkpoints the head now (the interval timer does this on its own). */
  checkpoint(): Promise<void>;
  /** A last checkpoint and anchor; call after the sink is closed. */
  close(): Promise<void>;
}

export const DEFAULT_CHECKPOINT_EVERY = { events: 1000, intervalMs: 10_000 } as const;
/** After a failed rotation, how long the file is left to grow before the next try. */
const ROTATION_RETRY_MS = 60_000;

export async function openAuditSeal(options: AuditSealOptions): Promise<AuditSeal> {
  const layout = logLayout(options.file);
  const now = options.now ?? Date.now;
  const state = await inspectLog(layout, options.anchors, now);
  const seal = new Seal(layout, state, options, now);
  await seal.start();
  return seal;
}

class Seal implements AuditSeal {
  readonly #layout: LogLayout;
  readonly #options: AuditSealOptions;
  readonly #now: () => number;
  readonly #every: { readonly events: number; readonly intervalMs: number };
  readonly #onError: (err: Error) => void;

  #stream: string | null;
  #file: number;
  #fileBytes: number;
  #fileStartedAt: number;
  #head: ChainHead | null;
  #checkpointed: { seq: number; reason: CheckpointReason | null };
  /** The head the checkpoint being written signs: the next is counted from there. */
  #claimed = 0;
  #n: number;
  #prevCheckpoint: string;
  #supersedes: SupersededLog | undefined;
  #supersedeAnchor: boolean;
  #rotationBlockedUntil = 0;

  #syncHandle: FileHandle | null = null;
  #checkpointsHandle: FileHandle | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #checkpointQueued = false;
  #anchorNext: AuditAnchorInput | null = null;
  #anchoring: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;

  constructor(layout: LogLayout, state: LogState, options: AuditSealOptions, now: () => number) {
    this.#layout = layout;
    this.#options = options;
    this.#now = now;
    this.#every = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.#onError = options.onError ?? ((err) => process.emitWarning(err));
    this.#stream = state.stream;
    this.#file = state.file;
    this.#fileBytes = state.fileBytes;
    this.#fileStartedAt = state.fileStartedAt ?? now();
    this.#head = state.head;
    this.#checkpointed = { seq: state.lastCheckpoint?.seq ?? 0, reason: state.lastCheckpoint?.reason ?? null };
    this.#n = (state.lastCheckpoint?.n ?? 0) + 1;
    this.#prevCheckpoint = state.lastCheckpoint?.hash ?? CHECKPOINT_GENESIS;
    this.#supersedes = state.supersedes;
    this.#supersedeAnchor = state.supersedes !== undefined;
  }

  async start(): Promise<void> {
    if (this.#supersedes !== undefined) {
      const s = this.#supersedes;
      this.#options.onWarning?.(
        `the audit directory ${this.#layout.dir} holds no log, but the anchor '${this.#options.anchors?.id}' names seq ${s.seq} of file ${s.file} of another (stream ${s.stream.slice(0, 12)}…): starting a new log that records it replaces that one. If the old files were not moved aside on purpose, they were deleted`,
      );
    }
    // A crash between renaming the full file and starting the next left no active file.
    if (this.#head !== null && (await sizeOf(this.#layout.active) ?? 0) === 0) {
      await rm(this.#layout.active, { force: true });
      await this.#startFile(this.#file + 1, this.#head, this.#layout.rotatedName(this.#file));
    }
    if (this.#options.signer !== undefined) this.#checkpointsHandle = await open(this.#layout.checkpoints, 'a', 0o600);
    if (this.#options.signer !== undefined || this.#options.anchors !== undefined) {
      this.#timer = setInterval(() => {
        if (this.#head !== null && this.#head.seq > this.#checkpointed.seq) this.#queueCheckpoint('interval');
      }, this.#every.intervalMs);
      this.#timer.unref();
    }
  }

  readonly afterBatch = (head: ChainHead, bytes: number): Promise<AuditFileSwitch | null> | null => {
    this.#head = head;
    this.#fileBytes += bytes;
    if (this.#rotationDue()) return this.#enqueue(() => this.#rotate());
    if (head.seq - Math.max(this.#checkpointed.seq, this.#claimed) >= this.#every.events) this.#queueCheckpoint('events');
    return null;
  };

  checkpoint(): Promise<void> {
    return this.#enqueue(() => this.#checkpoint('interval'));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#timer !== null) clearInterval(this.#timer);
      await this.#enqueue(() => this.#checkpoint('shutdown')).catch((error: unknown) => this.#report(error));
      await this.#anchoring;
      await this.#syncHandle?.close().catch(() => undefined);
      await this.#checkpointsHandle?.close().catch(() => undefined);
      if (this.#options.anchors?.ownsStore === true) await this.#options.anchors.store.close();
    })();
    return this.#closing;
  }

  #rotationDue(): boolean {
    const rotate = this.#options.rotate;
    if (rotate === undefined || this.#now() < this.#rotationBlockedUntil) return false;
    return (rotate.maxBytes !== undefined && this.#fileBytes >= rotate.maxBytes) || (rotate.maxAgeMs !== undefined && this.#now() - this.#fileStartedAt >= rotate.maxAgeMs);
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** At most one queued: it checkpoints whatever the head is when its turn comes. */
  #queueCheckpoint(reason: CheckpointReason): void {
    if (this.#checkpointQueued || this.#closing !== null) return;
    this.#checkpointQueued = true;
    void this.#enqueue(async () => {
      this.#checkpointQueued = false;
      await this.#checkpoint(reason);
    }).catch((error: unknown) => this.#report(error));
  }

  async #checkpoint(reason: CheckpointReason): Promise<void> {
    const head = this.#head;
    if (head === null) return;
    const repeat = head.seq === this.#checkpointed.seq;
    if (repeat && (reason === 'events' || reason === 'interval' || this.#checkpointed.reason === reason)) return;
    this.#claimed = head.seq;
    try {
      await this.#signAndAnchor(head, reason);
    } catch (error) {
      this.#claimed = this.#checkpointed.seq;
      throw error;
    }
  }

  async #signAndAnchor(head: ChainHead, reason: CheckpointReason): Promise<void> {
    await this.#syncFile();
    const signer = this.#options.signer;
    const anchors = this.#options.anchors;
    if (signer === undefined && anchors === undefined) {
      this.#checkpointed = { seq: head.seq, reason };
      return;
    }
    const stream = await this.#ensureStream();
    const time = new Date(this.#now()).toISOString();
    let line: string | null = null;
    if (signer !== undefined && this.#checkpointsHandle !== null) {
      const fields = { n: this.#n, stream, file: this.#file, seq: head.seq, head: head.hash, time, reason, prev: this.#prevCheckpoint, ...(this.#supersedes === undefined ? {} : { supersedes: this.#supersedes }) };
      const signed = signCheckpoint(fields, signer);
      await this.#checkpointsHandle.write(signed.line);
      await this.#checkpointsHandle.datasync();
      this.#n++;
      this.#prevCheckpoint = signed.hash;
      this.#supersedes = undefined;
      line = signed.line.trimEnd();
    }
    this.#checkpointed = { seq: head.seq, reason };
    if (anchors !== undefined) this.#anchor({ id: anchors.id, stream, file: this.#file, seq: head.seq, head: head.hash, time, checkpoint: line });
  }

  /** Anchors are written one at a time, in the background; a newer one replaces a waiting one. */
  #anchor(anchor: AuditAnchorInput): void {
    this.#anchorNext = anchor;
    this.#anchoring ??= (async () => {
      const anchors = this.#options.anchors!;
      for (let next = this.#anchorNext; next !== null; next = this.#anchorNext) {
        this.#anchorNext = null;
        try {
          if (await anchors.store.putAnchor(next, { supersede: this.#supersedeAnchor })) this.#supersedeAnchor = false;
          else {
            this.#report(
              mgError('MG_AUDIT_UNAVAILABLE', `the anchor '${anchors.id}' in ${anchors.store.location} is ahead of this log or names another: is another meshgate writing under the same audit.anchorId? Give each audit log its own`),
            );
          }
        } catch (error) {
          this.#report(error);
        }
      }
      this.#anchoring = null;
    })();
  }

  async #rotate(): Promise<AuditFileSwitch | null> {
    const head = this.#head!;
    const rotatedName = this.#layout.rotatedName(this.#file);
    const rotatedPath = join(this.#layout.dir, rotatedName);
    let renamed = false;
    try {
      // The full file's last line is signed and anchored before it is renamed.
      await this.#checkpoint('rotation');
      await this.#ensureStream();
      await this.#syncHandle?.close();
      this.#syncHandle = null;
      await rename(this.#layout.active, rotatedPath);
      renamed = true;
      await syncDir(this.#layout.dir);
      const started = await this.#startFile(this.#file + 1, head, rotatedName);
      const handle = await open(this.#layout.active, 'a', 0o600);
      return { handle, seq: started.seq, hash: started.hash };
    } catch (error) {
      // Writing goes on in the old file, under its old name, and rotation is tried again later.
      if (renamed) {
        await rm(this.#layout.active, { force: true }).catch(() => undefined);
        await rename(rotatedPath, this.#layout.active).catch(() => undefined);
      }
      this.#rotationBlockedUntil = this.#now() + ROTATION_RETRY_MS;
      this.#report(mgError('MG_AUDIT_UNAVAILABLE', `rotating the audit file ${this.#layout.active} failed (${errorText(error)}); writing on in it, trying again in ${ROTATION_RETRY_MS / 1000} s`, error));
      return null;
    }
  }

  /** Writes the new active file with its header as its only line; the seal's state moves to it. */
  async #startFile(file: number, previousHead: ChainHead, previous: string): Promise<ChainHead> {
    const startedAt = this.#now();
    const header: FileHeader = { type: FILE_HEADER_TYPE, time: new Date(startedAt).toISOString(), stream: await this.#ensureStream(), file, previous };
    const seq = previousHead.seq + 1;
    const sealed = sealLine(previousHead.hash, eventBody(header, seq, previousHead.hash));
    await writeAtomic(this.#layout.active, sealed.line);
    this.#file = file;
    this.#fileBytes = Buffer.byteLength(sealed.line);
    this.#fileStartedAt = startedAt;
    this.#head = { seq, hash: sealed.hash };
    return this.#head;
  }

  /** The log's identity: known from any header, or once the log's first line is written. */
  async #ensureStream(): Promise<string> {
    if (this.#stream !== null) return this.#stream;
    if (this.#file !== 1) throw new TypeError('a file after the first always has a header naming its stream');
    const first = await firstLine(this.#layout.active);
    if (first === null || 'problem' in first) throw mgError('MG_AUDIT_UNAVAILABLE', `the first line of ${this.#layout.active} cannot be read back (${first === null ? 'missing' : first.problem})`);
    this.#stream = first.hash;
    return first.hash;
  }

  /** fsync through a descriptor of our own: flushes the file's data whoever wrote it. */
  async #syncFile(): Promise<void> {
    this.#syncHandle ??= await open(this.#layout.active, 'r');
    await this.#syncHandle.datasync();
  }

  #report(error: unknown): void {
    try {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // A failing reporter must not stop checkpoints.
    }
  }
}

function errorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

