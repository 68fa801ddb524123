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
 */
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import type { Logger } from '../../log.ts';
import type { CommandHandler } from './command-stages.ts';
import { decodeCommand, type ResponseShape } from './codec/commands.ts';
import { encodeErr } from './codec/generic.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import { ResponseTracker, type ResponseHandler, type ResponseOutcome } from './codec/response-tracker.ts';
import { toErrPacket } from './errors.ts';
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
  onEnd(): void;
  /**
   * Called instead of closing the upstream connection when the client left between
   * commands: the connection can serve another session after a reset. Absent: never reused.
   */
  readonly onUpstreamReusable?: (connection: UpstreamConnection) => void;
}

type PauseReason = 'upstream' | 'audit' | 'held' | 'durable';

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
    this.client.on('close', () => this.end('client closed the connection', this.reuseUpstream()));
    this.client.on('error', () => this.end('client connection failed'));
    const leftover = this.upstreamConnection.leftover;
    if (leftover !== null) this.fromUpstream(leftover);
    this.process(early, 0);
    if (remainder !== null) this.fromClient(remainder);
    if (this.pausedFor.size === 0) this.client.resume();
  }

  /** Ends the session from outside (shutdown), recording its end first. */
  stop(reason: string): void {
    this.end(reason);
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
    const command = decodeCommand(frame.payload);
    const route = this.handler.onCommand(frame, command);
    if (route.kind === 'quit') {
      const kept = this.reuseUpstream();
      // Otherwise let MariaDB see a clean COM_QUIT instead of an aborted connection.
      if (kept === 'kept') this.end('client quit', kept);
      else {
        this.upstream.end(frame.raw);
        this.end('client quit', 'close-soon');
      }
      return;
    }
    if (route.kind === 'answer') {
      this.answerLocally(frame.seq, route.error);
      return;
    }
    const name = command.kind === 'relay' ? command.name : 'a command';
    if (route.durable === true && this.handler.afterDurable !== undefined) {
      this.forwardWhenDurable(frame.seq, route, name);
      return;
    }
    this.toUpstream(route.bytes);
    if (route.response !== 'none') this.tracker.expect(route.response, name);
  }

  /**
   * strict audit: the command goes upstream once its intent is on disk; reading from the
   * client waits meanwhile, so commands keep their order. The audit failing instead makes
   * it an answer of meshgate's own, and nothing goes upstream.
   */
  private forwardWhenDurable(seq: number, route: { readonly bytes: Buffer; readonly response: ResponseShape }, name: string): void {
    this.pause('durable');
    this.awaitingDurable = true;
    this.handler.afterDurable!((error) => {
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
    if (!this.client.write(chunk)) this.upstream.pause();
    try {
      this.tracker.scan(chunk);
    } catch (error) {
      const failure = asMeshgateError(error);
      this.options.log.error('upstream response could not be followed; closing session', { sessionId: this.options.sessionId, identity: this.options.identity, error: String(error) });
      this.end(`upstream protocol error (${failure.code})`);
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
  }

  onLocalInfileRequest(filename: string): void {
    if (!this.handler.allowLocalInfile) {
      // Upstream was told the client cannot send files; asking anyway is a server bug or attack.
      this.options.log.error('upstream requested a local file although LOCAL INFILE is off', { sessionId: this.options.sessionId, filename });
      this.end('upstream requested a local file');
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
    this.end(reason);
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
    const backlog = this.backlog;
    this.backlog = [];
    this.process(backlog, 0);
    if (this.pausedFor.size === 0) this.client.resume();
  }

  private fail(error: MeshgateError, seq: number): void {
    this.handler.onProtocolError(error);
    this.client.end(encodeMessage(encodeErr(toErrPacket(error)), seq));
    this.end(error.message);
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

  private end(reason: string, upstream: 'destroy' | 'close-soon' | 'kept' = 'destroy'): void {
    if (this.ended) return;
    this.ended = true;
    if (this.awaitingDurable) {
      this.awaitingDurable = false;
      this.handler.unforward?.(mgError('MG_AUDIT_UNAVAILABLE', `the session ended (${reason}) before the audit had this statement on disk; it was not sent upstream`));
    }
    if (upstream === 'destroy') this.upstream.destroy();
    else if (upstream === 'close-soon') setTimeout(() => this.upstream.destroy(), 1000).unref();
    if (!this.client.writableEnded) this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.handler.onEnd({ reason, bytesFromClient: this.bytesFromClient, bytesFromUpstream: this.bytesFromUpstream });
    this.options.onEnd();
  }
}
