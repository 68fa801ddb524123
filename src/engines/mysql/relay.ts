/**
 * The command phase of one session, as byte plumbing: client messages are framed and
 * decoded and reported to the handler (command-stages.ts), which routes each one — forward
 * (possibly rewritten), answer locally, or quit. Upstream bytes go back to the client as
 * they arrive; the response tracker tells where each answer ends, and each end is reported
 * to the handler — without buffering a single result row.
 *
 * Flow control lives here: stop reading from the client while upstream is full, while the
 * handler's audit is behind, or while a local answer waits for the upstream answers queued
 * before it.
 *
 * A session ends only once every command it sent upstream has an answer or is given up on:
 * when the client leaves, what it already sent still goes upstream and MariaDB's answers are
 * read to their end (a direct MariaDB runs them too); at shutdown, the answers due still
 * reach the client. Either wait is bounded (listener.timeouts.drain); commands whose answer
 * was not seen by then are reported to the handler as unanswered, with why.
 */
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import type { Logger } from '../../log.ts';
import type { CommandHandler } from './command-handler.ts';
import { decodeCommand, type ResponseShape } from './codec/commands.ts';
import { encodeErr } from './codec/generic.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import { ResponseTracker, type ResponseHandler, type ResponseOutcome } from './codec/response-tracker.ts';
import { toErrPacket } from './errors.ts';
import { quit } from './pool.ts';
import type { UpstreamConnection } from './upstream.ts';

/** What the relay needs of a socket; a net.Socket, a TLSSocket, or a test's in-memory pair. */
export type RelaySocket = import('node:stream').Duplex & { setNoDelay?(noDelay?: boolean): unknown };

export interface RelayOptions {
  readonly sessionId: string;
  /** Who the session is, for log lines (a SPIFFE ID). */
  readonly identity: string;
  readonly deprecateEof: boolean;
  readonly maxClientMessageBytes: number;
  readonly log: Logger;
  /** How long answers already due are awaited once the client left or meshgate stops. */
  readonly drainTimeoutMs: number;
  onEnd(): void;
  /**
   * Called instead of closing the upstream connection when the client left between
   * commands: the connection can serve another session after a reset. Absent: never reused.
   */
  readonly onUpstreamReusable?: (connection: UpstreamConnection) => void;
}

type PauseReason = 'upstream' | 'audit' | 'held' | 'durable';
/** What happens to the upstream connection at the end: handed back, closed with COM_QUIT, or cut. */
type UpstreamEnd = 'destroy' | 'close-soon' | 'quit' | 'kept';

export class Relay implements ResponseHandler {
  private readonly upstream: RelaySocket;
  private readonly framer: PacketFramer;
  private readonly tracker: ResponseTracker;
  private sendingLocalFile = false;
  /** An error meshgate answers itself, waiting for the upstream answers queued before it. */
  private heldError: { bytes: Buffer } | null = null;
  private backlog: Frame[] = [];
  private pausedFor = new Set<PauseReason>();
  private bytesFromClient = 0;
  private bytesFromUpstream = 0;
  private ended = false;
  /** A command routed 'forward' whose audit intent is not on disk yet (strict audit). */
  private awaitingDurable = false;
  /** Why the session is ending, once something began to end it: the first cause is its end reason. */
  private ending: string | null = null;
  /** The client is gone: what it already sent still runs, the answers go nowhere. */
  private clientLeft = false;
  /** Nothing new goes upstream (shutdown, COM_QUIT behind answers due); answers due still reach the client. */
  private noNewCommands = false;
  private drainTimer: NodeJS.Timeout | null = null;
  /** Why the session ends, for a client waiting for nothing (an ERR packet), when ended from outside. */
  private farewell: Buffer | null = null;

  private readonly upstreamHandlers = {
    data: (chunk: Buffer) => this.fromUpstream(chunk),
    drain: () => this.resume('upstream'),
    close: () => this.upstreamLost('upstream closed the connection'),
    error: (error: NodeJS.ErrnoException) => this.upstreamLost(`upstream connection failed (${error.code ?? error.message})`),
  };

  constructor(
    private readonly client: RelaySocket,
    private readonly upstreamConnection: UpstreamConnection,
    private readonly handler: CommandHandler,
    private readonly options: RelayOptions,
  ) {
    this.upstream = upstreamConnection.socket;
    this.framer = new PacketFramer(options.maxClientMessageBytes);
    this.tracker = new ResponseTracker(options.deprecateEof, this);
  }

  /** `early` and `remainder`: what the client sent behind its login, before the relay ran. */
  start(early: Frame[], remainder: Buffer | null): void {
    this.upstream.setNoDelay?.(true);
    this.client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    for (const [event, handler] of Object.entries(this.upstreamHandlers)) this.upstream.on(event, handler);
    this.upstream.resume();
    this.client.on('drain', () => this.upstream.resume());
    this.client.on('close', () => this.clientGone('client closed the connection'));
    this.client.on('error', () => this.clientGone('client connection failed'));
    const leftover = this.upstreamConnection.leftover;
    if (leftover !== null) this.fromUpstream(leftover);
    this.process(early, 0);
    if (remainder !== null) this.fromClient(remainder);
    if (this.pausedFor.size === 0) this.client.resume();
  }

  /**
   * Ends the session from outside (shutdown): nothing more goes upstream, the answers due
   * still reach the client (within the drain bound), then the session ends with `reason`.
   */
  stop(reason: string, farewell: Buffer | null = null): void {
    if (this.ended || this.ending !== null) return;
    this.farewell = farewell;
    // Received but not yet sent upstream: never run, so nothing to record.
    this.backlog = [];
    if (!this.answersDue()) {
      this.end(reason, reason, 'quit');
      return;
    }
    this.noNewCommands = true;
    this.drain(reason);
  }

  /** The client is gone (its socket closed or failed). */
  clientGone(reason: string): void {
    if (this.ended || this.clientLeft) return;
    if (this.ending === null && !this.answersDue() && this.backlog.length === 0) {
      this.end(reason, reason, this.reuseUpstream());
      return;
    }
    this.clientLeft = true;
    // Answers now go nowhere: MariaDB must not wait on a reader that is gone.
    this.upstream.resume();
    if (this.heldError !== null) {
      this.heldError = null;
      this.pausedFor.delete('held');
    }
    if (this.ending === null) this.drain(reason);
    this.continueBacklog();
  }

  // ── client → upstream ────────────────────────────────────────────────────────────────

  private fromClient(chunk: Buffer): void {
    this.bytesFromClient += chunk.length;
    let frames: Frame[];
    try {
      frames = this.framer.push(chunk);
    } catch (error) {
      this.fail(asMeshgateError(error), 1);
      return;
    }
    if (this.pausedFor.size > 0 || this.backlog.length > 0) {
      for (const frame of frames) this.backlog.push(frame);
      return;
    }
    this.process(frames, 0);
  }

  private process(frames: Frame[], from: number): void {
    for (let i = from; i < frames.length; i++) {
      if (this.ended) return;
      if (this.pausedFor.size > 0) {
        for (let j = i; j < frames.length; j++) this.backlog.push(frames[j]!);
        return;
      }
      try {
        this.onFrame(frames[i]!);
      } catch (error) {
        this.fail(asMeshgateError(error), frames[i]!.seq + 1);
        return;
      }
      this.waitForAudit();
    }
  }

  private onFrame(frame: Frame): void {
    if (this.sendingLocalFile) {
      if (frame.payload.length === 0) this.sendingLocalFile = false;
      this.toUpstream(frame.raw);
      return;
    }
    // Shutting down: the file a command asked for still goes up, new commands do not.
    if (this.noNewCommands) return;
    const command = decodeCommand(frame.payload);
    const route = this.handler.onCommand(frame, command);
    if (route.kind === 'quit') {
      const kept = this.reuseUpstream();
      // Otherwise let MariaDB see a clean COM_QUIT instead of an aborted connection.
      if (kept === 'kept') this.end('client quit', 'client quit', kept);
      else if (this.answersDue()) {
        // MariaDB answers what came before the COM_QUIT, then closes; the client still reads them.
        this.upstream.end(frame.raw);
        this.noNewCommands = true;
        this.drain('client quit');
      } else {
        this.upstream.end(frame.raw);
        this.end('client quit', 'client quit', 'close-soon');
      }
      return;
    }
    if (route.kind === 'answer') {
      this.answerLocally(frame.seq, route.error);
      return;
    }
    const name = command.kind === 'relay' ? command.name : 'a command';
    if (route.held === true && this.handler.whenAdmitted !== undefined) {
      this.forwardWhenReady(frame.seq, route, name, this.handler.whenAdmitted.bind(this.handler));
      return;
    }
    if (route.durable === true && this.handler.afterDurable !== undefined) {
      this.forwardWhenReady(frame.seq, route, name, this.handler.afterDurable.bind(this.handler));
      return;
    }
    this.toUpstream(route.bytes);
    if (route.response !== 'none') this.tracker.expect(route.response, name);
  }

  /**
   * strict audit: the command goes upstream once its intent is on disk (or, held by its
   * service class, once admitted); reading from the client waits meanwhile, so commands keep their order. The audit failing instead makes
   * it an answer of meshgate's own, and nothing goes upstream.
   */
  private forwardWhenReady(seq: number, route: { readonly bytes: Buffer; readonly response: ResponseShape }, name: string, until: (callback: (error: MeshgateError | null) => void) => void): void {
    this.pause('durable');
    this.awaitingDurable = true;
    until((error) => {
      if (this.ended || !this.awaitingDurable) return;
      this.awaitingDurable = false;
      if (error !== null) {
        this.handler.unforward?.(error);
        this.answerLocally(seq, error);
      } else {
        this.toUpstream(route.bytes);
        if (route.response !== 'none') this.tracker.expect(route.response, name);
      }
      this.resume('durable');
    });
  }

  private toUpstream(bytes: Buffer): void {
    if (!this.upstream.write(bytes)) this.pause('upstream');
  }

  // ── upstream → client ────────────────────────────────────────────────────────────────

  private fromUpstream(chunk: Buffer): void {
    this.bytesFromUpstream += chunk.length;
    // Written before it is scanned: a held local answer must follow these bytes.
    if (!this.clientLeft && !this.client.write(chunk)) this.upstream.pause();
    try {
      this.tracker.scan(chunk);
    } catch (error) {
      const failure = asMeshgateError(error);
      this.options.log.error('upstream response could not be followed; closing session', { sessionId: this.options.sessionId, identity: this.options.identity, error: String(error) });
      const why = `upstream protocol error (${failure.code})`;
      this.end(this.ending ?? why, `${why}: meshgate could not follow MariaDB's answer`);
    }
  }

  onResponse(outcome: ResponseOutcome): void {
    this.handler.onResponse(outcome);
    this.waitForAudit();
    if (this.heldError !== null && this.tracker.pendingResponses === 0) {
      this.client.write(this.heldError.bytes);
      this.heldError = null;
      queueMicrotask(() => this.resume('held'));
    }
    // The last answer due may just have come: then a leaving or stopping session ends.
    if (this.ending !== null) queueMicrotask(() => this.settle());
  }

  onLocalInfileRequest(filename: string): void {
    if (!this.handler.allowLocalInfile) {
      // Upstream was told the client cannot send files; asking anyway is a server bug or attack.
      this.options.log.error('upstream requested a local file although LOCAL INFILE is off', { sessionId: this.options.sessionId, filename });
      this.end(this.ending ?? 'upstream requested a local file', 'MariaDB asked for a local file that meshgate does not let clients send, so meshgate closed the connection');
      return;
    }
    this.sendingLocalFile = true;
  }

  onUnsolicited(): void {
    // e.g. the server's "connection was killed" error; the client sees it, close follows.
  }

  /** MariaDB ended the session first (KILL, restart, wait_timeout, network): the operator hears of it. */
  private upstreamLost(reason: string): void {
    if (!this.ended) this.options.log.warn(`MySQL session ended: ${reason}`, { sessionId: this.options.sessionId, identity: this.options.identity, upstreamConnectionId: this.upstreamConnection.connectionId });
    // The first cause ends the session; a client that left first is why it was ending.
    this.end(this.ending ?? reason, `${reason} before MariaDB's answer came`);
  }

  // ── meshgate's own answers, flow control ─────────────────────────────────────────────

  /** Answers a command with an error without asking upstream, in order with answers still due. */
  private answerLocally(seq: number, error: MeshgateError): void {
    const bytes = encodeMessage(encodeErr(toErrPacket(error)), seq + 1);
    if (this.tracker.pendingResponses === 0) {
      this.client.write(bytes);
      return;
    }
    this.heldError = { bytes };
    this.pause('held');
  }

  /** The handler's audit is behind: read no more from the client until it catches up. */
  private waitForAudit(): void {
    if (!this.handler.backlogged || this.pausedFor.has('audit')) return;
    this.pause('audit');
    this.handler.onDrain(() => this.resume('audit'));
  }

  private pause(reason: PauseReason): void {
    this.pausedFor.add(reason);
    this.client.pause();
  }

  private resume(reason: PauseReason): void {
    if (!this.pausedFor.delete(reason) || this.pausedFor.size > 0 || this.ended) return;
    this.continueBacklog();
    if (this.pausedFor.size === 0 && !this.clientLeft) this.client.resume();
  }

  private continueBacklog(): void {
    if (this.pausedFor.size === 0 && this.backlog.length > 0) {
      const backlog = this.backlog;
      this.backlog = [];
      this.process(backlog, 0);
    }
    this.settle();
  }

  private fail(error: MeshgateError, seq: number): void {
    this.handler.onProtocolError(error);
    this.client.end(encodeMessage(encodeErr(toErrPacket(error)), seq));
    this.end(this.ending ?? error.message, `the client broke the protocol (${error.code}) and meshgate closed the connection`);
  }

  // ── the end of a session with answers due ────────────────────────────────────────────

  /**
   * Commands sent upstream whose answer has not ended yet, a file transfer under way, or a
   * command waiting for its audit intent to reach the disk: it was accepted, so it still goes.
   */
  private answersDue(): boolean {
    return this.tracker.pendingResponses > 0 || !this.tracker.idle || this.sendingLocalFile || this.awaitingDurable;
  }

  /** Waits (bounded) for the answers due, as `why` ends the session; what has not come by then is unanswered. */
  private drain(why: string): void {
    this.ending = why;
    const seconds = this.options.drainTimeoutMs / 1000;
    // Not unref'd: a shutdown waits for it, and nothing else may keep the process alive.
    this.drainTimer = setTimeout(
      () => this.end(why, `${why}, and MariaDB had not answered within ${seconds} s (listener.timeouts.drain), so meshgate closed the upstream connection`),
      this.options.drainTimeoutMs,
    );
  }

  /** Ends an ending session once nothing is due any more. */
  private settle(): void {
    const why = this.ending;
    if (this.ended || why === null) return;
    if (this.clientLeft && this.sendingLocalFile && this.backlog.length === 0 && this.pausedFor.size === 0) {
      // The rest of the file will never come; MariaDB gives the load up when the connection closes.
      this.end(why, `${why} before sending the whole file MariaDB asked for (LOAD DATA LOCAL INFILE), so meshgate closed the upstream connection mid-file`);
      return;
    }
    if (this.answersDue() || this.backlog.length > 0) return;
    this.end(why, why, 'quit');
  }

  /**
   * Hands the upstream connection back when the session ends between commands, with
   * nothing in flight and nothing half-sent: then no byte of this session can reach the next.
   */
  private reuseUpstream(): 'kept' | 'destroy' {
    const between = this.tracker.idle && !this.sendingLocalFile && this.heldError === null && this.backlog.length === 0 && this.framer.buffered === 0;
    if (this.ended || !between || this.options.onUpstreamReusable === undefined || this.upstream.destroyed) return 'destroy';
    for (const [event, handler] of Object.entries(this.upstreamHandlers)) this.upstream.off(event, handler);
    this.options.onUpstreamReusable(this.upstreamConnection);
    return 'kept';
  }

  /**
   * `reason`: why the session ended (the first cause); `unanswered`: why commands still due,
   * if any, got no answer — each is recorded with it.
   */
  private end(reason: string, unanswered: string = reason, upstream: UpstreamEnd = 'destroy'): void {
    if (this.ended) return;
    this.ended = true;
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    if (this.awaitingDurable) {
      this.awaitingDurable = false;
      this.handler.unforward?.(mgError('MG_AUDIT_UNAVAILABLE', `the session ended (${reason}) before the audit had this statement on disk; it was not sent upstream`));
    }
    if (upstream === 'destroy') this.upstream.destroy();
    else if (upstream === 'close-soon') setTimeout(() => this.upstream.destroy(), 1000).unref();
    else if (upstream === 'quit') quit(this.upstreamConnection);
    // An ERR between commands (sequence 0), as MariaDB tells an idle session it is shutting down;
    // mid-answer it would be read as that answer, so then the connection just closes.
    const between = this.farewell !== null && !this.clientLeft && this.tracker.idle && this.tracker.pendingResponses === 0;
    if (!this.client.writableEnded) this.client.end(between ? this.farewell : undefined);
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.handler.onEnd({ reason, unanswered, bytesFromClient: this.bytesFromClient, bytesFromUpstream: this.bytesFromUpstream });
    this.options.onEnd();
  }
}
