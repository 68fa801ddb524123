/**
 * The command phase of one session: client commands go upstream (checked, tagged and
 * timed), upstream bytes go back to the client as they arrive. The response tracker
 * tells where each answer ends so every statement gets one audit event with its rows,
 * duration and error — without buffering a single result row.
 */
import type { Socket } from 'node:net';
import type { AuditIdentity, StatementEvent } from '../../audit/types.ts';
import { newTraceId } from '../../audit/trace-context.ts';
import { auditTime } from '../../audit/clock.ts';
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { Command, LAST_PREPARED_STATEMENT_ID } from './codec/constants.ts';
import { decodeCommand, type ClientCommand } from './codec/commands.ts';
import { encodeErr } from './codec/generic.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import { ResponseTracker, type ResponseHandler, type ResponseOutcome } from './codec/response-tracker.ts';
import type { MysqlEngineContext } from './context.ts';
import { translateKill, type SessionDirectory } from './directory.ts';
import { toErrPacket } from './errors.ts';
import type { UpstreamConnection } from './upstream.ts';
import { extractTraceparent, redactSecrets, spliceTag, sqlcommenterComment, statementVerb } from './sql/index.ts';

export interface RelayOptions {
  readonly sessionId: string;
  readonly identity: AuditIdentity;
  readonly role: string;
  readonly rule: string | null;
  readonly database: string | null;
  readonly allowLocalInfile: boolean;
  readonly deprecateEof: boolean;
  readonly startedAt: number;
  readonly directory: SessionDirectory;
  onEnd(): void;
  /**
   * Called instead of closing the upstream connection when the client left between
   * commands: the connection can serve another session after a reset. Absent: never reused.
   */
  readonly onUpstreamReusable?: (connection: UpstreamConnection) => void;
}

interface InFlight {
  readonly command: string;
  readonly code: number;
  readonly text: string | null;
  readonly traceId: string;
  readonly startedNs: bigint;
}

/** Commands too routine to audit one by one (they carry no SQL and change no data). */
const QUIET_COMMANDS = new Set<number>([Command.PING, Command.STMT_CLOSE, Command.STMT_SEND_LONG_DATA, Command.STMT_RESET, Command.STMT_FETCH, Command.SET_OPTION, Command.STATISTICS]);

export class Relay implements ResponseHandler {
  private readonly upstream: Socket;
  private readonly framer: PacketFramer;
  private readonly tracker: ResponseTracker;
  private readonly inFlight: InFlight[] = [];
  private readonly prepared = new Map<number, string | null>();
  private lastPrepared: string | null = null;
  private database: string | null;
  private sendingLocalFile = false;
  /** An error meshgate answers itself, waiting for the upstream answers queued before it. */
  private heldError: { bytes: Buffer } | null = null;
  private backlog: Frame[] = [];
  private pausedFor = new Set<'upstream' | 'audit' | 'held'>();
  private statements = 0;
  private bytesFromClient = 0;
  private bytesFromUpstream = 0;
  private ended = false;
  private readonly commentHead: string;

  private readonly upstreamHandlers = {
    data: (chunk: Buffer) => this.fromUpstream(chunk),
    drain: () => this.resume('upstream'),
    close: () => this.upstreamLost('upstream closed the connection'),
    error: (error: NodeJS.ErrnoException) => this.upstreamLost(`upstream connection failed (${error.code ?? error.message})`),
  };

  /** MariaDB ended the session first (KILL, restart, wait_timeout, network): the operator hears of it. */
  private upstreamLost(reason: string): void {
    if (!this.ended) this.ctx.log.warn(`MySQL session ended: ${reason}`, { sessionId: this.options.sessionId, identity: this.options.identity.spiffeId, upstreamConnectionId: this.upstreamConnectionId });
    this.end(reason);
  }

  constructor(
    private readonly client: Socket,
    private readonly upstreamConnection: UpstreamConnection,
    private readonly ctx: MysqlEngineContext,
    private readonly options: RelayOptions,
  ) {
    const upstream = upstreamConnection;
    this.upstream = upstream.socket;
    this.upstreamConnectionId = upstream.connectionId;
    this.database = options.database;
    this.framer = new PacketFramer(ctx.maxClientMessageBytes);
    this.tracker = new ResponseTracker(options.deprecateEof, this);
    // Everything of the tag but the per-statement trace, encoded once per session; the
    // comment is pure ASCII (sqlcommenter percent-encodes the rest).
    this.commentHead = sqlcommenterComment({ meshgate_identity: options.identity.spiffeId, meshgate_role: options.role }).slice(0, -2);
    this.leftover = upstream.leftover;
  }

  private readonly upstreamConnectionId: number;
  private readonly leftover: Buffer | null;

  /** `early` and `remainder`: what the client sent behind its login, before the relay ran. */
  start(early: Frame[], remainder: Buffer | null): void {
    this.upstream.setNoDelay(true);
    this.client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    for (const [event, handler] of Object.entries(this.upstreamHandlers)) this.upstream.on(event, handler);
    this.upstream.resume();
    this.client.on('drain', () => this.upstream.resume());
    this.client.on('close', () => this.end('client closed the connection', this.reuseUpstream()));
    this.client.on('error', () => this.end('client connection failed'));
    if (this.leftover !== null) this.fromUpstream(this.leftover);
    this.process(early, 0);
    if (remainder !== null) this.fromClient(remainder);
    if (this.pausedFor.size === 0) this.client.resume();
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
    }
  }

  private onFrame(frame: Frame): void {
    if (this.sendingLocalFile) {
      if (frame.payload.length === 0) this.sendingLocalFile = false;
      this.toUpstream(frame.raw);
      return;
    }
    const command = decodeCommand(frame.payload);
    if (command.kind === 'quit') {
      const kept = this.reuseUpstream();
      // Otherwise let MariaDB see a clean COM_QUIT instead of an aborted connection.
      if (kept === 'kept') this.end('client quit', kept);
      else {
        this.upstream.end(frame.raw);
        this.end('client quit', 'close-soon');
      }
      return;
    }
    if (command.kind === 'forbidden') {
      const why =
        command.code === Command.CHANGE_USER
          ? 'COM_CHANGE_USER is refused: a meshgate session keeps the identity it was opened with; open a new connection with the other certificate'
          : `${command.name} is not allowed through meshgate; connect to MariaDB directly for administration and replication`;
      this.answerLocally(frame.seq, mgError('MG_COMMAND_FORBIDDEN', why), command.name, null);
      return;
    }
    if (command.code === Command.INIT_DB) {
      const refusal = this.checkDatabase(command.text ?? '');
      if (refusal !== null) {
        this.answerLocally(frame.seq, refusal, command.name, command.text);
        return;
      }
    }
    const route = translateKill(frame, command, this.options.directory, this.options.identity.spiffeId);
    if ('refusal' in route) {
      this.answerLocally(frame.seq, route.refusal, command.name, command.text);
      return;
    }
    this.forward(route.frame, command, route.text);
  }

  /** `sent`: the statement as it goes upstream, where meshgate rewrote the client's text. */
  private forward(frame: Frame, command: Extract<ClientCommand, { kind: 'relay' }>, sent: string | null): void {
    let text = command.text;
    let traceId = '';
    let bytes = frame.raw;
    if (command.code === Command.STMT_EXECUTE || command.code === Command.STMT_BULK_EXECUTE) {
      text = command.statementId === LAST_PREPARED_STATEMENT_ID ? this.lastPrepared : (this.prepared.get(command.statementId!) ?? null);
    } else if (command.code === Command.STMT_CLOSE) {
      this.prepared.delete(command.statementId!);
    }
    if (command.response !== 'none' && !QUIET_COMMANDS.has(command.code)) {
      const carried = text === null ? null : extractTraceparent(text);
      traceId = carried?.traceId ?? newTraceId();
      if (command.code === Command.QUERY || command.code === Command.STMT_PREPARE) {
        if (command.code === Command.STMT_PREPARE) this.lastPrepared = text;
        if (this.ctx.tagStatements && text !== null) bytes = spliceTag(frame, sent ?? text, this.commentHead, carried === null ? traceId : null) ?? bytes;
      }
    }
    this.toUpstream(bytes);
    if (command.response !== 'none') {
      this.tracker.expect(command.response);
      this.inFlight.push({ command: command.name, code: command.code, text, traceId, startedNs: process.hrtime.bigint() });
    }
  }

  private checkDatabase(database: string): MeshgateError | null {
    const decision = this.ctx.policy().evaluate(this.options.identity, { engine: 'mysql', database });
    if (!decision.allow) return mgError('MG_POLICY_DENIED', decision.reason);
    if (decision.role !== this.options.role) {
      return mgError(
        'MG_POLICY_DENIED',
        `database '${database}' is granted through role ${decision.role} (rule ${decision.ruleId}), but this session runs as role ${this.options.role}; open a new connection naming database '${database}'`,
      );
    }
    return null;
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
      this.ctx.log.error('upstream response could not be followed; closing session', { sessionId: this.options.sessionId, error: String(error) });
      this.end('upstream protocol error');
    }
  }

  onResponse(outcome: ResponseOutcome): void {
    const done = this.inFlight.shift();
    if (done === undefined) return;
    if (done.code === Command.STMT_PREPARE && outcome.statementId !== null && outcome.error === null) {
      this.prepared.set(outcome.statementId, done.text);
    }
    if (done.code === Command.INIT_DB && outcome.error === null) this.database = done.text;
    // The server dropped every prepared statement. Cleared here, in order with the answers
    // to COM_STMT_PREPARE that fill the map, not when the command went upstream.
    if (done.code === Command.RESET_CONNECTION && outcome.error === null) this.prepared.clear();
    if (!QUIET_COMMANDS.has(done.code)) {
      const durationUs = Number((process.hrtime.bigint() - done.startedNs) / 1000n);
      this.recordStatement(done.command, done.text, done.traceId, 'allow', outcome, durationUs, null);
    }
    if (this.heldError !== null && this.tracker.pendingResponses === 0) {
      this.client.write(this.heldError.bytes);
      this.heldError = null;
      queueMicrotask(() => this.resume('held'));
    }
  }

  onLocalInfileRequest(filename: string): void {
    if (!this.options.allowLocalInfile) {
      // Upstream was told the client cannot send files; asking anyway is a server bug or attack.
      this.ctx.log.error('upstream requested a local file although LOCAL INFILE is off', { sessionId: this.options.sessionId, filename });
      this.end('upstream requested a local file');
      return;
    }
    this.sendingLocalFile = true;
  }

  onUnsolicited(): void {
    // e.g. the server's "connection was killed" error; the client sees it, close follows.
  }

  // ── meshgate's own answers, audit, flow control ──────────────────────────────────────

  /** Answers a command with an error without asking upstream, in order with answers still due. */
  private answerLocally(seq: number, error: MeshgateError, command: string, text: string | null): void {
    const bytes = encodeMessage(encodeErr(toErrPacket(error)), seq + 1);
    this.recordStatement(command, text, newTraceId(), 'deny', null, 0, error);
    if (this.tracker.pendingResponses === 0) {
      this.client.write(bytes);
      return;
    }
    this.heldError = { bytes };
    this.pause('held');
  }

  private recordStatement(
    command: string,
    text: string | null,
    traceId: string,
    decision: 'allow' | 'deny',
    outcome: ResponseOutcome | null,
    durationUs: number,
    refusal: MeshgateError | null,
  ): void {
    this.statements++;
    const upstreamError = outcome?.error ?? null;
    const event: StatementEvent = {
      type: 'statement',
      time: auditTime(),
      sessionId: this.options.sessionId,
      engine: 'mysql',
      identity: this.options.identity,
      traceId,
      command,
      verb: text === null || command === 'init_db' ? null : statementVerb(text),
      statement: text === null ? null : redactSecrets(text),
      database: this.database,
      decision,
      rule: decision === 'allow' ? this.options.rule : null,
      upstreamRole: this.options.role,
      upstreamConnectionId: this.upstreamConnectionId,
      rowsReturned: outcome?.rowsReturned ?? 0,
      rowsAffected: outcome?.rowsAffected ?? 0,
      durationUs,
      error:
        refusal !== null
          ? { code: refusal.code, message: refusal.message }
          : upstreamError === null
            ? null
            : { code: upstreamError.code, message: upstreamError.message, sqlState: upstreamError.sqlState },
    };
    this.ctx.audit.record(event);
    if (this.ctx.audit.backlogged && !this.pausedFor.has('audit')) {
      this.pause('audit');
      this.ctx.audit.onDrain(() => this.resume('audit'));
    }
  }

  private pause(reason: 'upstream' | 'audit' | 'held'): void {
    this.pausedFor.add(reason);
    this.client.pause();
  }

  private resume(reason: 'upstream' | 'audit' | 'held'): void {
    if (!this.pausedFor.delete(reason) || this.pausedFor.size > 0 || this.ended) return;
    const backlog = this.backlog;
    this.backlog = [];
    this.process(backlog, 0);
    if (this.pausedFor.size === 0) this.client.resume();
  }

  private fail(error: MeshgateError, seq: number): void {
    this.recordStatement('protocol', null, newTraceId(), 'deny', null, 0, error);
    this.client.end(encodeMessage(encodeErr(toErrPacket(error)), seq));
    this.end(error.message);
  }

  /** Ends the session from outside (shutdown), recording its end first. */
  stop(reason: string): void {
    this.end(reason);
  }

  /**
   * Hands the upstream connection back when the session ends between commands, with
   * nothing in flight and nothing half-sent: then no byte of this session can reach the next.
   */
  private reuseUpstream(): 'kept' | 'destroy' {
    const between = this.tracker.idle && this.inFlight.length === 0 && !this.sendingLocalFile && this.heldError === null && this.backlog.length === 0 && this.framer.buffered === 0;
    if (this.ended || !between || this.options.onUpstreamReusable === undefined || this.upstream.destroyed) return 'destroy';
    for (const [event, handler] of Object.entries(this.upstreamHandlers)) this.upstream.off(event, handler);
    this.options.onUpstreamReusable(this.upstreamConnection);
    return 'kept';
  }

  private end(reason: string, upstream: 'destroy' | 'close-soon' | 'kept' = 'destroy'): void {
    if (this.ended) return;
    this.ended = true;
    if (upstream === 'destroy') this.upstream.destroy();
    else if (upstream === 'close-soon') setTimeout(() => this.upstream.destroy(), 1000).unref();
    if (!this.client.writableEnded) this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.ctx.audit.record({
      type: 'session_end',
      time: auditTime(),
      sessionId: this.options.sessionId,
      engine: 'mysql',
      identity: this.options.identity,
      statements: this.statements,
      bytesFromClient: this.bytesFromClient,
      bytesFromUpstream: this.bytesFromUpstream,
      durationMs: Date.now() - this.options.startedAt,
      reason,
    });
    this.options.onEnd();
  }
}
