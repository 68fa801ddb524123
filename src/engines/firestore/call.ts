/**
 * One Firestore RPC through meshgate:
 *
 *   caller message ──▶ decode (trimmed) ──▶ every path through policy ──▶ forward the same bytes
 *   upstream messages ──▶ counted (documents, transactions) ──▶ caller, as they arrive
 *
 * A message touching anything denied refuses the whole call with PERMISSION_DENIED naming
 * the path and the rule; in a stream (Write, Listen) nothing after it is forwarded, and the
 * upstream stream is cancelled. One audit event per call, when it ends, with its outcome.
 *
 * Bounded waits: the caller has firestore.timeouts.request to send its request (the whole of
 * it, or a stream's first message). A caller that goes away from a call that writes does not
 * cancel it: Firestore may have applied it already, so meshgate reads the answer to its end
 * (firestore.timeouts.drain at most) and the event says what Firestore did; past the bound
 * the call is cancelled upstream and recorded `unknown`. A read is cancelled at once.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Outcome } from '../../audit/index.ts';
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { encodeGrpcMessage, encodeStatusMessage, GrpcMessageReader, GrpcStatus, refuseCall, traceOf, type GrpcCall, type GrpcMessage } from '../../transport/grpc/index.ts';
import { answerNow, answerWhenSent } from './call-answers.ts';
import { CallPolicy } from './call-policy.ts';
import { CallRecord } from './call-record.ts';
import { describeRequest, type MethodSpec, type RequestFacts } from './codec/access.ts';
import { encodeTargetRefusal } from './codec/messages.ts';
import { countResponse } from './codec/responses.ts';
import { forwardedHeaders, messageOf, responseHeaders, statusOf, trailerHeaders } from './headers.ts';
import type { FirestoreEngineContext } from './context.ts';

export class FirestoreCall {
  private readonly reader: GrpcMessageReader;
  private readonly responses: GrpcMessageReader;
  private upstream: ClientHttp2Stream | null = null;
  private opening: Promise<void> | null = null;
  private readonly queued: Buffer[] = [];
  private clientEnded = false;
  private finished = false;
  /** What policy said about the call so far: paths, operations, rule, admission. */
  private readonly policy: CallPolicy;
  private readonly record: CallRecord;
  private documents = 0;
  private trailers: IncomingHttpHeaders | null = null;
  private refusedTargets = 0;
  /** Response headers already sent by meshgate (a Listen refusal before Firestore answered). */
  private respondedFirst = false;
  private readonly traceId: string;
  /** Messages whose audit intent is not on disk yet (strict audit). */
  private awaitingDurable = 0;
  /** The caller is gone: nothing more reaches it; a call that writes still runs to its answer. */
  private callerLeft = false;
  /** A message waits in its service class's queue: nothing more is read or sent until it is decided. */
  private held = false;
  private requestTimer: NodeJS.Timeout | null = null;
  private drainTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly call: GrpcCall,
    private readonly spec: MethodSpec,
    private readonly ctx: FirestoreEngineContext,
    sessionId: string,
    /** Told once, when the call has recorded its event. */
    private readonly onFinished: () => void = () => {},
  ) {
    this.reader = new GrpcMessageReader(ctx.maxMessageBytes);
    this.responses = new GrpcMessageReader(ctx.maxResponseMessageBytes);
    const trace = traceOf(call.headers);
    this.traceId = trace.traceId;
    this.policy = new CallPolicy(ctx, call.identity);
    this.record = new CallRecord(ctx, call, sessionId, trace, this.policy);
  }

  start(): void {
    const stream = this.call.stream;
    // Counted from the request's arrival, identity resolution included.
    const elapsedMs = Number((process.hrtime.bigint() - this.call.startedAt) / 1_000_000n);
    this.requestTimer = setTimeout(() => this.requestTimedOut(), Math.max(0, this.ctx.requestTimeoutMs - elapsedMs));
    stream.on('data', (chunk: Buffer) => this.fromClient(chunk));
    stream.on('end', () => {
      this.clientEnded = true;
      this.requestComplete();
      this.onClientEnd();
    });
    stream.on('close', () => this.callerGone('the caller cancelled the call'));
  }

  /** Shutdown, first step: a Listen never ends by itself, so it is ended now; other calls get the drain bound. */
  shutdown(reason: string): void {
    if (this.spec.name !== 'Listen' || this.finished) return;
    // UNAVAILABLE with why, not a reset stream: the SDK reopens the Listen, on a running replica.
    const error = mgError('MG_SHUTTING_DOWN', reason);
    this.upstream?.close(constants.NGHTTP2_CANCEL);
    const stream = this.call.stream;
    if (!stream.headersSent) refuseCall(stream, error, { withHeaders: true });
    else if (!stream.destroyed && !stream.closed) {
      this.trailers = { 'grpc-status': String(GrpcStatus.UNAVAILABLE), 'grpc-message': encodeStatusMessage(error.toString()) };
      stream.end();
    }
    this.finish(GrpcStatus.UNAVAILABLE, null, error);
  }

  /** Shutdown, past the drain bound: cancelled upstream and at the caller, recorded with its outcome. */
  abort(reason: string): void {
    if (this.finished) return;
    const stream = this.call.stream;
    if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
    this.callerLeft = true;
    this.giveUp(reason);
  }

  private requestComplete(): void {
    if (this.requestTimer !== null) clearTimeout(this.requestTimer);
    this.requestTimer = null;
  }

  /** A caller that opened a call and never finished sending its request must not hold it open. */
  private requestTimedOut(): void {
    if (this.finished || this.requestTimer === null) return;
    const seconds = this.ctx.requestTimeoutMs / 1000;
    const what = this.spec.streaming === 'bidi' ? 'its first message' : 'its whole request';
    const error = mgError('MG_CLIENT_TIMEOUT', `${this.spec.name} did not send ${what} within ${seconds} s (firestore.timeouts.request); meshgate ended the call`);
    this.upstream?.close(constants.NGHTTP2_CANCEL);
    answerNow(this.call.stream, error, this.spec.streaming !== 'unary');
    this.finish(null, null, error);
  }

  /** Whether the call may change data, so that its answer matters after its caller left. */
  private mayWrite(): boolean {
    return this.policy.writes > 0 || this.spec.name === 'Commit' || this.spec.name === 'Rollback';
  }

  private callerGone(why: string): void {
    if (this.finished || this.callerLeft) return;
    this.callerLeft = true;
    this.requestComplete();
    const upstream = this.upstream;
    if (upstream === null || !this.mayWrite()) {
      this.upstream?.close(constants.NGHTTP2_CANCEL);
      this.finish(GrpcStatus.CANCELLED, why, null);
      return;
    }
    // Firestore may have applied it already: its answer, read to the end, says.
    if (!upstream.writableEnded) upstream.end();
    upstream.resume();
    const seconds = this.ctx.drainTimeoutMs / 1000;
    this.drainTimer = setTimeout(
      () => this.giveUp(`${why}, and Firestore had not answered within ${seconds} s (firestore.timeouts.drain), so meshgate cancelled the call upstream`),
      this.ctx.drainTimeoutMs,
    );
  }

  /** The answer will not be seen: a call that writes is `unknown`, a read has simply failed. */
  private giveUp(why: string): void {
    if (this.finished) return;
    this.upstream?.close(constants.NGHTTP2_CANCEL);
    if (this.upstream === null || !this.mayWrite()) {
      this.finish(GrpcStatus.CANCELLED, why, null);
      return;
    }
    const unknown = mgError('MG_OUTCOME_UNKNOWN', `${why}: its writes may or may not have been applied; look for trace id ${this.traceId} in Firestore's request logs`);
    this.finish(GrpcStatus.CANCELLED, null, unknown, 'unknown');
  }

  private onClientEnd(): void {
    const stream = this.call.stream;
    // Messages still waiting for their audit intent (or their class) go first; the last of them ends the call.
    if (this.awaitingDurable > 0 || this.held) return;
    if (this.upstream !== null && this.queued.length === 0) {
      if (!this.upstream.writableEnded) this.upstream.end();
    } else if (this.upstream === null && this.opening === null && this.queued.length > 0 && !this.finished) this.openUpstream();
    else if (this.upstream === null && this.opening === null && !this.finished) {
      if (this.respondedFirst) {
        // Every target was refused and the caller is done: end as Firestore would.
        this.trailers = { 'grpc-status': String(GrpcStatus.OK) };
        stream.end();
        this.finish(GrpcStatus.OK, null, null);
      } else this.refuse(mgError('MG_PACKET_MALFORMED', `${this.spec.name} needs a request message; the call ended without one`));
    }
  }

  private fromClient(chunk: Buffer): void {
    if (this.finished) return;
    let messages;
    try {
      messages = this.reader.push(chunk);
    } catch (error) {
      this.refuse(asMeshgateError(error));
      return;
    }
    this.takeMessages(messages, 0);
  }

  /**
   * The messages from `from` on, in order. A message its service class queues stops the
   * loop, and reading from the caller, until the class admits or refuses it.
   */
  private takeMessages(messages: readonly GrpcMessage[], from: number): void {
    for (let i = from; i < messages.length; i++) {
      const message = messages[i]!;
      if (message.compressed) {
        this.refuse(mgError('MG_PACKET_MALFORMED', 'meshgate reads every request to authorize it and does not accept compressed messages: turn request compression off in the client'));
        return;
      }
      let facts: RequestFacts;
      try {
        facts = describeRequest(this.spec, message.payload);
      } catch (error) {
        this.refuse(decodeError(error, this.spec));
        return;
      }
      const pathsBefore = this.policy.paths.length;
      const refusal = this.policy.authorize(facts);
      if (refusal instanceof Promise) {
        this.held = true;
        this.call.stream.pause();
        void refusal.then((answer) => {
          this.held = false;
          // Gone meanwhile: what its class admitted goes back (finish released what it held then).
          if (this.finished) return this.policy.admission?.release();
          if (this.callerLeft || !this.decided(message, facts, pathsBefore, answer)) return;
          this.call.stream.resume();
          this.takeMessages(messages, i + 1);
          if (!this.held && this.awaitingDurable === 0 && this.clientEnded) this.onClientEnd();
        });
        return;
      }
      if (!this.decided(message, facts, pathsBefore, refusal)) return;
    }
    // buffered audit behind: read no more from this caller until it catches up.
    if (this.ctx.audit.backlogged) {
      this.call.stream.pause();
      this.ctx.audit.onDrain(() => this.call.stream.resume());
    }
  }

  /** Policy and the service class have answered for `message`: false when that ended the call. */
  private decided(message: GrpcMessage, facts: RequestFacts, pathsBefore: number, refusal: MeshgateError | null): boolean {
    if (refusal !== null && facts.listenTargetId !== undefined && refusal.code === 'MG_POLICY_DENIED') {
      // Firestore refuses a listen target by removing it with a cause, and the stream
      // goes on; the SDK reports it to that listener. A stream ended instead is retried.
      this.answerListen(encodeTargetRefusal(facts.listenTargetId, GrpcStatus.PERMISSION_DENIED, `[${refusal.code}] ${refusal.message}`));
      // A listen stream can live for hours: the refusal is audited now, on its own.
      this.refusedTargets++;
      this.record.listenRefusal(this.policy.paths.splice(pathsBefore), refusal);
      return true;
    }
    if (refusal !== null) {
      this.refuse(refusal);
      return false;
    }
    // Nothing goes upstream that the audit cannot record (docs/audit-durability.md).
    const unavailable = this.ctx.audit.refusal();
    if (unavailable !== null) {
      this.refuse(unavailable);
      return false;
    }
    if (this.spec.streaming === 'bidi') this.requestComplete();
    if (this.ctx.audit.strict) this.forwardWhenDurable(message.raw, this.policy.paths.slice(pathsBefore));
    else this.forward(message.raw);
    return true;
  }

  /** strict audit: the message's intent on disk first, then upstream; in order, as they came. */
  private forwardWhenDurable(raw: Buffer, paths: readonly string[]): void {
    this.ctx.audit.rpcIntent({ engine: 'firestore', sessionId: this.record.sessionId, identity: this.call.identity, method: this.call.method, traceId: this.traceId, paths });
    this.awaitingDurable++;
    this.ctx.audit.afterDurable((error) => {
      this.awaitingDurable--;
      // A caller gone meanwhile: what was already sent runs to its answer, this never goes.
      if (this.finished || this.callerLeft) return;
      if (error !== null) {
        this.refuse(error);
        return;
      }
      this.forward(raw);
      if (this.awaitingDurable === 0 && this.clientEnded) this.onClientEnd();
    });
  }

  private forward(raw: Buffer): void {
    if (this.upstream !== null) {
      this.write(raw);
      return;
    }
    this.queued.push(raw);
    // A unary or server-streaming call has one message, and its END_STREAM follows at once:
    // opening then sends both in one frame. Write and Listen streams open right away.
    if (this.spec.streaming === 'bidi' || this.clientEnded) this.openUpstream();
  }

  private openUpstream(): void {
    if (this.opening !== null || this.upstream !== null) return;
    const auth = this.ctx.upstream.auth;
    const cached = auth.cached(this.policy.serviceAccount);
    if (cached !== null) {
      this.opening = Promise.resolve();
      this.openWith(cached);
      return;
    }
    this.opening = auth.authorization(this.policy.serviceAccount).then(
      (authorization) => this.openWith(authorization),
      (error: unknown) => this.refuse(asMeshgateError(error)),
    );
  }

  private openWith(authorization: string): void {
    if (this.finished) return;
    let upstream: ClientHttp2Stream;
    try {
      upstream = this.ctx.upstream.open(this.call.method, forwardedHeaders(this.call.headers), authorization);
    } catch (error) {
      this.refuse(mgError('MG_UPSTREAM_UNAVAILABLE', `cannot reach Firestore: ${(error as Error).message}`, error));
      return;
    }
    this.upstream = upstream;
    upstream.on('response', (headers, flags) => this.onResponse(headers, flags));
    upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    upstream.on('trailers', (trailers) => (this.trailers = trailers));
    upstream.on('end', () => this.upstreamEnded());
    upstream.on('error', (error) => this.upstreamFailed(error));
    upstream.on('close', () => {
      if (!this.finished && !this.call.stream.headersSent) this.upstreamFailed(new Error(`stream closed (${upstream.rstCode})`));
    });
    this.call.stream.on('drain', () => upstream.resume());
    upstream.on('drain', () => this.call.stream.resume());
    const queued = this.queued.splice(0);
    const last = this.clientEnded ? queued.pop() : undefined;
    for (const raw of queued) this.write(raw);
    if (last !== undefined) upstream.end(last);
    else if (this.clientEnded) upstream.end();
  }

  private write(raw: Buffer): void {
    if (!this.upstream!.write(raw)) this.call.stream.pause();
  }

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    if (this.finished) return;
    if (this.callerLeft) {
      // Nobody to answer; a trailers-only answer is the whole of it.
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
        this.trailers = headers;
        this.upstreamEnded();
      }
      return;
    }
    if (this.respondedFirst) {
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
        this.trailers = headers;
        this.upstreamEnded();
      }
      return;
    }
    const out = responseHeaders(headers);
    if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
      // Trailers-only: the upstream refused before any message.
      this.call.stream.respond(out, { endStream: true });
      this.finish(statusOf(headers), messageOf(headers), null);
      return;
    }
    this.call.stream.respond(out, { waitForTrailers: true });
    this.call.stream.once('wantTrailers', () => this.call.stream.sendTrailers(trailerHeaders(this.trailers)));
  }

  /** Sends a Listen response of meshgate's own, between whole upstream messages. */
  private answerListen(payload: Buffer): void {
    const stream = this.call.stream;
    if (!stream.headersSent) {
      stream.respond({ [constants.HTTP2_HEADER_STATUS]: 200, [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers(trailerHeaders(this.trailers)));
      this.respondedFirst = true;
    }
    stream.write(encodeGrpcMessage(payload));
  }

  private fromUpstream(chunk: Buffer): void {
    // Listen answers go message by message, so meshgate's own refusals fit between them;
    // everything else passes through as it arrives.
    const wholeMessages = this.spec.name === 'Listen';
    const toCaller = !this.callerLeft;
    if (toCaller && !wholeMessages && !this.call.stream.write(chunk)) this.upstream?.pause();
    let messages;
    try {
      messages = this.responses.push(chunk);
    } catch {
      if (wholeMessages) this.upstreamFailed(new Error('Firestore sent a Listen response meshgate cannot frame'));
      return;
    }
    for (const message of messages) {
      if (toCaller && wholeMessages && !this.call.stream.write(message.raw)) this.upstream?.pause();
      try {
        const counted = countResponse(this.spec, message.payload);
        this.documents += counted.documents;
        if (counted.transaction !== null && this.policy.beginsReadOnly) this.ctx.transactions.markReadOnly(this.call.identity.principal, counted.transaction);
      } catch {
        // Counting is for the audit event; the caller still gets the bytes as Firestore sent them.
      }
    }
  }

  private upstreamEnded(): void {
    if (this.finished) return;
    const status = statusOf(this.trailers ?? {});
    if (this.callerLeft) {
      // Firestore's own answer to a call whose caller left: what it did, recorded.
    } else if (this.call.stream.headersSent) this.call.stream.end();
    else refuseCall(this.call.stream, mgError('MG_UPSTREAM_PROTOCOL', 'Firestore ended the call without an answer'));
    if (status === GrpcStatus.OK && this.policy.writes > 0) this.documents += this.policy.writes;
    this.finish(status, messageOf(this.trailers ?? {}), null);
  }

  private upstreamFailed(error: Error): void {
    if (this.finished) return;
    const failure = mgError('MG_UPSTREAM_UNAVAILABLE', `Firestore upstream failed: ${error.message}`, error);
    if (this.callerLeft) {
      // Nothing to tell the caller; the write was sent and its answer is lost.
    } else if (this.call.stream.headersSent) this.call.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    else refuseCall(this.call.stream, failure);
    this.finish(GrpcStatus.UNAVAILABLE, failure.message, failure, this.mayWrite() ? 'unknown' : 'failed');
  }

  private refuse(error: MeshgateError): void {
    if (this.finished) return;
    this.upstream?.close(constants.NGHTTP2_CANCEL);
    answerWhenSent(this.call.stream, error, this.spec.streaming !== 'unary', this.clientEnded || this.spec.streaming === 'bidi');
    this.finish(null, null, error);
  }

  /** `status`: what ended the call (Firestore's, or CANCELLED); `outcome` when it does not follow (call-record.ts). */
  private finish(status: number | null, upstreamMessage: string | null, error: MeshgateError | null, outcome?: Outcome): void {
    if (this.finished) return;
    this.finished = true;
    this.requestComplete();
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.onFinished();
    this.policy.admission?.release();
    if (error !== null) this.record.logRefusal(error);
    // A listen stream whose every target was refused has said all there is in those events.
    if (this.refusedTargets > 0 && this.upstream === null && error === null) return;
    const forwarded = this.upstream !== null;
    this.record.end({ status, upstreamMessage, error, forwarded, mayWrite: this.mayWrite(), documents: this.documents, ...(outcome === undefined ? {} : { outcome }) });
  }
}

function decodeError(error: unknown, spec: MethodSpec): MeshgateError {
  const coded = asMeshgateError(error);
  if (coded.code === 'MG_INTERNAL') return mgError('MG_PACKET_MALFORMED', `the ${spec.name} request is not a valid google.firestore.v1.${spec.request} message`, error);
  return mgError(coded.code, `${spec.name}: ${coded.message}`, error);
}
