/**
 * One Firestore RPC through meshgate:
 *
 *   caller message ──▶ decode (trimmed) ──▶ every path through policy ──▶ forward the same bytes
 *   upstream messages ──▶ counted (documents, transactions) ──▶ caller, as they arrive
 *
 * A message touching anything denied refuses the whole call with PERMISSION_DENIED naming
 * the path and the rule; in a stream (Write, Listen) nothing after it is forwarded, and the
 * upstream stream is cancelled. One audit event per call, when it ends.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { DEFAULT_SERVICE_CLASS, type FirestoreRequest } from '../../policy/index.ts';
import type { Admission } from '../../throttle/index.ts';
import { encodeGrpcMessage, GrpcMessageReader, GrpcStatus, refuseCall, rpcFacts, traceIdOf, type GrpcCall } from '../../transport/grpc/index.ts';
import { logRefusal } from '../refusal-log.ts';
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
  private readonly paths: string[] = [];
  private operation: string | null = null;
  private rule: string | null = null;
  private documents = 0;
  private writes = 0;
  private trailers: IncomingHttpHeaders | null = null;
  private serviceAccount: string | null = null;
  /** The call's place in its service class (the throttle stage), given back when it ends. */
  private admission: (Admission & { admitted: true }) | null = null;
  private beginsReadOnly = false;
  private refusedTargets = 0;
  /** Response headers already sent by meshgate (a Listen refusal before Firestore answered). */
  private respondedFirst = false;
  private readonly traceId: string;
  /** Messages whose audit intent is not on disk yet (strict audit). */
  private awaitingDurable = 0;

  constructor(
    private readonly call: GrpcCall,
    private readonly spec: MethodSpec,
    private readonly ctx: FirestoreEngineContext,
    private readonly sessionId: string,
  ) {
    this.reader = new GrpcMessageReader(ctx.maxMessageBytes);
    this.responses = new GrpcMessageReader(ctx.maxResponseMessageBytes);
    this.traceId = traceIdOf(call.headers);
  }

  start(): void {
    const stream = this.call.stream;
    stream.on('data', (chunk: Buffer) => this.fromClient(chunk));
    stream.on('end', () => {
      this.clientEnded = true;
      this.onClientEnd();
    });
    stream.on('close', () => {
      if (!this.finished) {
        this.upstream?.close(constants.NGHTTP2_CANCEL);
        this.finish(GrpcStatus.CANCELLED, 'the caller cancelled the call', null);
      }
    });
  }

  private onClientEnd(): void {
    const stream = this.call.stream;
    // Messages still waiting for their audit intent go first; the last of them ends the call.
    if (this.awaitingDurable > 0) return;
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
    for (const message of messages) {
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
      const pathsBefore = this.paths.length;
      const refusal = this.authorize(facts);
      if (refusal !== null && facts.listenTargetId !== undefined && refusal.code === 'MG_POLICY_DENIED') {
        // Firestore refuses a listen target by removing it with a cause, and the stream
        // goes on; the SDK reports it to that listener. A stream ended instead is retried.
        this.answerListen(encodeTargetRefusal(facts.listenTargetId, GrpcStatus.PERMISSION_DENIED, `[${refusal.code}] ${refusal.message}`));
        // A listen stream can live for hours: the refusal is audited now, on its own.
        this.recordListenRefusal(this.paths.splice(pathsBefore), refusal);
        continue;
      }
      if (refusal !== null) {
        this.refuse(refusal);
        return;
      }
      // Nothing goes upstream that the audit cannot record (docs/audit-durability.md).
      const unavailable = this.ctx.audit.refusal();
      if (unavailable !== null) {
        this.refuse(unavailable);
        return;
      }
      if (this.ctx.audit.strict) this.forwardWhenDurable(message.raw, this.paths.slice(pathsBefore));
      else this.forward(message.raw);
    }
    // buffered audit behind: read no more from this caller until it catches up.
    if (this.ctx.audit.backlogged) {
      this.call.stream.pause();
      this.ctx.audit.onDrain(() => this.call.stream.resume());
    }
  }

  /** strict audit: the message's intent on disk first, then upstream; in order, as they came. */
  private forwardWhenDurable(raw: Buffer, paths: readonly string[]): void {
    this.ctx.audit.rpcIntent({ engine: 'firestore', sessionId: this.sessionId, identity: this.call.identity, method: this.call.method, traceId: this.traceId, paths });
    this.awaitingDurable++;
    this.ctx.audit.afterDurable((error) => {
      this.awaitingDurable--;
      if (this.finished) return;
      if (error !== null) {
        this.refuse(error);
        return;
      }
      this.forward(raw);
      if (this.awaitingDurable === 0 && this.clientEnded) this.onClientEnd();
    });
  }

  /** Every path of the message through policy; null when all are allowed. */
  /** Every path of the message through policy (all recorded); the first refusal, or null. */
  private authorize(facts: RequestFacts): MeshgateError | null {
    const projects = new Set([facts.database.project, ...facts.accesses.map((a) => a.database.project)]);
    projects.delete('');
    for (const project of projects) {
      if (project !== this.ctx.project) return mgError('MG_POLICY_DENIED', `meshgate serves Firestore project '${this.ctx.project}', not '${project}'`);
    }
    const policy = this.ctx.policy.current();
    const identity = this.call.identity;
    let refusal: MeshgateError | null = null;
    let serviceClass: string | null = null;
    for (const access of facts.accesses) {
      const request: FirestoreRequest = { engine: 'firestore', database: access.database.database, path: access.path, pathKind: access.kind, operation: access.operation };
      const decision = policy.evaluate(identity, request);
      if (this.paths.length < 1000) this.paths.push(access.kind === 'document' || access.path === '' ? access.path : `${access.path} (${access.kind})`);
      this.operation = mergeOperation(this.operation, access.operation);
      if (refusal !== null) continue;
      this.rule = decision.ruleId;
      if (!decision.allow) {
        const where = access.path === '' ? `database ${access.database.database}` : `${access.kind} ${access.path}`;
        refusal = mgError('MG_POLICY_DENIED', `${access.operation} of ${where} denied: ${decision.reason}`);
        continue;
      }
      this.serviceAccount ??= decision.googleServiceAccount;
      serviceClass ??= decision.serviceClass;
    }
    if (refusal !== null) return refusal;
    if (facts.transaction !== null && facts.writes > 0 && this.ctx.transactions.isReadOnly(identity.principal, facts.transaction)) {
      this.rule = null; // no rule refused it: the caller's own read-only promise did
      return mgError('MG_POLICY_DENIED', 'this transaction was begun read-only; writes in it are refused');
    }
    if (this.admission === null) {
      const admission = this.ctx.throttle.admit({ engine: 'firestore', kind: 'call', serviceClass: serviceClass ?? DEFAULT_SERVICE_CLASS, principal: identity.spiffeId });
      if (!admission.admitted) return admission.error;
      this.admission = admission;
    }
    this.writes += facts.writes;
    this.beginsReadOnly ||= facts.beginsTransaction === 'read-only';
    return null;
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
    const cached = auth.cached(this.serviceAccount);
    if (cached !== null) {
      this.opening = Promise.resolve();
      this.openWith(cached);
      return;
    }
    this.opening = auth.authorization(this.serviceAccount).then(
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
    if (!wholeMessages && !this.call.stream.write(chunk)) this.upstream?.pause();
    let messages;
    try {
      messages = this.responses.push(chunk);
    } catch {
      if (wholeMessages) this.upstreamFailed(new Error('Firestore sent a Listen response meshgate cannot frame'));
      return;
    }
    for (const message of messages) {
      if (wholeMessages && !this.call.stream.write(message.raw)) this.upstream?.pause();
      try {
        const counted = countResponse(this.spec, message.payload);
        this.documents += counted.documents;
        if (counted.transaction !== null && this.beginsReadOnly) this.ctx.transactions.markReadOnly(this.call.identity.principal, counted.transaction);
      } catch {
        // Counting is for the audit event; the caller still gets the bytes as Firestore sent them.
      }
    }
  }

  private upstreamEnded(): void {
    if (this.finished) return;
    const status = statusOf(this.trailers ?? {});
    if (this.call.stream.headersSent) this.call.stream.end();
    else refuseCall(this.call.stream, mgError('MG_UPSTREAM_PROTOCOL', 'Firestore ended the call without an answer'));
    if (status === GrpcStatus.OK && this.writes > 0) this.documents += this.writes;
    this.finish(status, messageOf(this.trailers ?? {}), null);
  }

  private upstreamFailed(error: Error): void {
    if (this.finished) return;
    const failure = mgError('MG_UPSTREAM_UNAVAILABLE', `Firestore upstream failed: ${error.message}`, error);
    if (this.call.stream.headersSent) this.call.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    else refuseCall(this.call.stream, failure);
    this.finish(GrpcStatus.UNAVAILABLE, failure.message, failure);
  }

  private refuse(error: MeshgateError): void {
    if (this.finished) return;
    this.upstream?.close(constants.NGHTTP2_CANCEL);
    const stream = this.call.stream;
    // Answering before the caller finished sending makes Node reset the stream, which
    // gRPC clients read as INTERNAL and retry; a unary caller's END_STREAM is a moment away.
    const withHeaders = this.spec.streaming !== 'unary';
    if (this.clientEnded || this.spec.streaming === 'bidi' || stream.destroyed) refuseCall(stream, error, { withHeaders });
    else {
      const answer = () => refuseCall(stream, error, { withHeaders });
      const timer = setTimeout(answer, 1000);
      timer.unref();
      stream.once('end', () => {
        clearTimeout(timer);
        answer();
      });
      stream.resume();
    }
    this.finish(null, null, error);
  }

  private logRefusal(error: MeshgateError): void {
    logRefusal(this.ctx.log, error, { engine: 'firestore', sessionId: this.sessionId, peer: this.call.peer, identity: this.call.identity, rule: this.rule, method: this.call.method });
  }

  /** What every audit event of this call says about who called what. */
  private about() {
    return { engine: 'firestore', sessionId: this.sessionId, peer: this.call.peer, identity: this.call.identity, xfcc: this.call.xfcc, method: this.call.method } as const;
  }

  private recordListenRefusal(paths: string[], error: MeshgateError): void {
    this.refusedTargets++;
    this.logRefusal(error);
    this.ctx.audit.rpc(
      rpcFacts({
        ...this.about(),
        operation: 'read',
        paths,
        decision: 'deny',
        rule: this.rule,
        reason: error.message,
        traceId: this.traceId,
        error,
        documents: 0,
        startedAt: process.hrtime.bigint(),
      }),
    );
  }

  private finish(status: number | null, upstreamMessage: string | null, error: MeshgateError | null): void {
    if (this.finished) return;
    this.finished = true;
    this.admission?.release();
    if (error !== null) this.logRefusal(error);
    // A listen stream whose every target was refused has said all there is in those events.
    if (this.refusedTargets > 0 && this.upstream === null && error === null) return;
    const denied = error !== null && error.code === 'MG_POLICY_DENIED';
    this.ctx.audit.rpc(
      rpcFacts({
        ...this.about(),
        operation: this.operation,
        paths: this.paths,
        decision: denied || (error !== null && this.upstream === null) ? 'deny' : 'allow',
        rule: this.rule,
        // Calls that name no path (BeginTransaction, Rollback, an empty Commit) touch no data;
        // the reads and writes made in a transaction are judged one by one.
        reason: error?.message ?? (this.rule === null ? 'touches no documents' : `allowed by ${this.rule}`),
        traceId: this.traceId,
        error,
        ...(status === null || error !== null ? {} : { status }),
        ...(upstreamMessage === null ? {} : { upstreamMessage }),
        documents: status === GrpcStatus.OK || status === null ? this.documents : 0,
        startedAt: this.call.startedAt,
      }),
    );
  }
}

function decodeError(error: unknown, spec: MethodSpec): MeshgateError {
  const coded = asMeshgateError(error);
  if (coded.code === 'MG_INTERNAL') return mgError('MG_PACKET_MALFORMED', `the ${spec.name} request is not a valid google.firestore.v1.${spec.request} message`, error);
  return mgError(coded.code, `${spec.name}: ${coded.message}`, error);
}

function mergeOperation(current: string | null, next: string): string {
  if (current === null || current === next) return next;
  return current.split('+').includes(next) ? current : `${current}+${next}`;
}
