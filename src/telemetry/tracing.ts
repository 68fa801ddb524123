/**
 * OpenTelemetry traces, built from what the engines already report: the audit recorder
 * publishes every event on `meshgate:<engine>:<type>` (audit/recorder.ts), and this module
 * subscribes when `tracing` is configured. Nothing here runs on the relay path otherwise: no
 * SDK, no subscriber, and publishing without subscribers costs nothing.
 *
 *   statement (MySQL)  CLIENT span, child of the caller's sqlcommenter traceparent
 *   rpc (Firestore)    CLIENT span, child of the caller's traceparent metadata; its identity step
 *   connection         SERVER span per login, with its identity, policy and upstream steps
 *
 * Every span carries the trace id its audit event records (the caller's, or the one meshgate
 * made and tagged the statement with), so audit, MariaDB's logs and the trace agree. Spans
 * are exported in batches over OTLP/HTTP (protobuf); a slow or absent collector costs spans,
 * never a session's time.
 */
import diagnostics from 'node:diagnostics_channel';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler } from '@opentelemetry/sdk-trace-base';
import { ATTR_ERROR_TYPE, ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { REPORTED_FACTS, type ConnectionEvent, type LoginTiming, type PublishedEvent, type RpcEvent, type SessionEndEvent, type StatementEvent, type TraceParent } from '../audit/index.ts';
import type { TracingConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { otlpExporter } from './otlp-export.ts';
import {
  identityAttributes,
  loginAttributes,
  loginError,
  loginSpanName,
  rpcAttributes,
  rpcError,
  rpcSpanName,
  statementAttributes,
  statementError,
  statementSpanName,
  type AttributeOptions,
  type QueryTextMode,
  type ServerAddress,
  type SpanError,
} from './span-attributes.ts';
import { RecentSpans, type SpanSummary } from './recent-spans.ts';
import { RecordedTraceIds } from './trace-ids.ts';

export interface TracingOptions {
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
  readonly version: string;
  /** service.instance.id: this replica's name. */
  readonly instanceId: string;
  readonly mysqlServer?: ServerAddress;
  readonly firestoreServer?: ServerAddress;
  readonly firestoreProject?: string;
}

export interface Tracing {
  /** Where Firestore calls go, once known (an emulator meshgate launched picks its port at start). */
  setFirestoreServer(server: ServerAddress): void;
  /** The spans this replica ended lately in one trace (recent-spans.ts): what a probe checks. */
  recentSpans(traceId: string): readonly SpanSummary[];
  /** Stops listening, then exports what is left (at most the export timeout). */
  close(): Promise<void>;
}

/** A moment on both clocks: events carry monotonic marks, spans want wall-clock times. */
interface Now {
  readonly hr: bigint;
  readonly ms: number;
}

const now = (): Now => ({ hr: process.hrtime.bigint(), ms: performance.timeOrigin + performance.now() });
const wallClock = (at: Now, mark: bigint): number => at.ms - Number(at.hr - mark) / 1e6;

export function startTracing(config: TracingConfig, options: TracingOptions): Tracing {
  const ids = new RecordedTraceIds();
  const recent = new RecentSpans();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: options.version, [ATTR_SERVICE_INSTANCE_ID]: options.instanceId }),
    sampler: samplerOf(config.sampling),
    idGenerator: ids,
    // Spans show up within a second or two; a full queue drops spans rather than wait.
    spanProcessors: [new BatchSpanProcessor(otlpExporter(config.otlp, options.log, options.env), { scheduledDelayMillis: 1000, maxQueueSize: 4096 }), recent],
  });
  const spans = new SpanMaker(provider.getTracer('meshgate', options.version), ids, config.queryText, options);
  const subscriptions: [string, (message: unknown) => void][] = [
    ['meshgate:mysql:statement', (message) => spans.statement(message as PublishedEvent<StatementEvent>)],
    ['meshgate:mysql:connection', (message) => spans.login(message as PublishedEvent<ConnectionEvent>)],
    ['meshgate:mysql:session_end', (message) => spans.sessionEnded(message as SessionEndEvent)],
    ['meshgate:firestore:rpc', (message) => spans.rpc(message as PublishedEvent<RpcEvent>)],
    ['meshgate:firestore:connection', (message) => spans.login(message as PublishedEvent<ConnectionEvent>)],
  ];
  // A subscriber that throws would take the process down (diagnostics_channel rethrows on the next tick).
  const guarded = subscriptions.map(([name, handle]) => [name, guard(handle, options.log)] as const);
  for (const [name, handle] of guarded) diagnostics.subscribe(name, handle);
  return {
    setFirestoreServer: (server) => spans.setFirestoreServer(server),
    recentSpans: (traceId) => recent.of(traceId),
    async close() {
      for (const [name, handle] of guarded) diagnostics.unsubscribe(name, handle);
      // The last export failing (the exporter said so in the log) must not fail meshgate's shutdown.
      await provider.shutdown().catch(() => undefined);
    },
  };
}

/**
 * Parent-based: a span under a caller's traceparent follows the caller's sampled flag (with
 * `followCaller`), a trace meshgate starts is kept for `ratio` of trace ids, and a login's
 * steps follow their login.
 */
function samplerOf(sampling: TracingConfig['sampling']): Sampler {
  const ratio = new TraceIdRatioBasedSampler(sampling.ratio);
  return new ParentBasedSampler(sampling.followCaller ? { root: ratio } : { root: ratio, remoteParentSampled: ratio, remoteParentNotSampled: ratio });
}

function guard(handle: (message: unknown) => void, log: Logger): (message: unknown) => void {
  let lastReport = 0;
  return (message) => {
    try {
      handle(message);
    } catch (error) {
      const at = Date.now();
      if (at - lastReport < 60_000) return;
      lastReport = at;
      log.error('tracing could not make a span; the operation itself is unaffected (said at most once a minute)', { error: String(error) });
    }
  };
}

class SpanMaker {
  private readonly attributeOptions: { -readonly [K in keyof AttributeOptions]: AttributeOptions[K] };
  /** The login span of each open MySQL session, linked from its statements. */
  private readonly logins = new Map<string, SpanContext>();

  constructor(
    private readonly tracer: Tracer,
    private readonly ids: RecordedTraceIds,
    private readonly queryText: TracingConfig['queryText'],
    options: TracingOptions,
  ) {
    this.attributeOptions = { queryText, mysqlServer: options.mysqlServer, firestoreServer: options.firestoreServer, firestoreProject: options.firestoreProject };
  }

  setFirestoreServer(server: ServerAddress): void {
    this.attributeOptions.firestoreServer = server;
  }

  /** The policy rule's traceQueryText, where it chose one, over the configuration's. */
  private optionsFor(ruled: QueryTextMode | null | undefined): AttributeOptions {
    return ruled == null || ruled === this.queryText ? this.attributeOptions : { ...this.attributeOptions, queryText: ruled };
  }

  statement(event: PublishedEvent<StatementEvent>): void {
    const end = now().ms;
    const login = this.logins.get(event.sessionId);
    const facts = event[REPORTED_FACTS];
    const span = this.start(statementSpanName(event), SpanKind.CLIENT, end - event.durationUs / 1000, event.traceId, facts?.parent ?? null, login, facts?.spanId ?? null);
    if (span.isRecording()) {
      const options = this.optionsFor(facts?.traceQueryText);
      span.setAttributes(statementAttributes(event, options));
      markError(span, statementError(event, options.queryText));
    }
    span.end(end);
  }

  rpc(event: PublishedEvent<RpcEvent>): void {
    const at = now();
    const start = at.ms - event.durationUs / 1000;
    const facts = event[REPORTED_FACTS];
    const span = this.start(rpcSpanName(event), SpanKind.CLIENT, start, event.traceId, facts?.parent ?? null);
    if (span.isRecording()) {
      const options = this.optionsFor(facts?.traceQueryText);
      span.setAttributes(rpcAttributes(event, options));
      markError(span, rpcError(event, options.queryText));
      const identified = facts?.identifiedAt;
      if (identified !== undefined) this.step(span, 'identity', start, wallClock(at, identified), identityOf(event), null);
    }
    span.end(at.ms);
  }

  /** A login, allowed or refused, with its steps as child spans as far as it got. */
  login(event: PublishedEvent<ConnectionEvent>): void {
    const at = now();
    const timing = event[REPORTED_FACTS]?.login;
    // The accept time is wall-clock milliseconds, the steps are placed from the monotonic clock:
    // the earlier of the two, so the login span always contains its steps.
    const startTime = timing === undefined ? at.ms : Math.min(timing.acceptedAt, wallClock(at, timing.began));
    const span = this.tracer.startSpan(loginSpanName(event), { kind: SpanKind.SERVER, startTime }, ROOT_CONTEXT);
    if (span.isRecording()) {
      span.setAttributes(loginAttributes(event, this.attributeOptions));
      const error = loginError(event);
      markError(span, error);
      if (timing !== undefined) {
        const failed = (step: 'identity' | 'policy' | 'upstream') => (error !== null && failedStep(event, timing) === step ? error : null);
        if (timing.identified !== undefined) this.step(span, 'identity', wallClock(at, timing.began), wallClock(at, timing.identified), identityOf(event), failed('identity'));
        if (timing.decided !== undefined && timing.identified !== undefined) {
          const rule = event.rule === null ? {} : { 'meshgate.rule': event.rule };
          this.step(span, 'policy', wallClock(at, timing.identified), wallClock(at, timing.decided), rule, failed('policy'));
        }
        if (timing.upstream !== undefined) {
          const upstream = { ...(event.upstreamRole === null ? {} : { 'meshgate.role': event.upstreamRole }), ...(event.upstreamConnectionId === null ? {} : { 'meshgate.upstream.connection_id': event.upstreamConnectionId }) };
          this.step(span, 'upstream', wallClock(at, timing.upstream.from), wallClock(at, timing.upstream.to), upstream, failed('upstream'));
        }
      }
      if (event.engine === 'mysql' && event.decision === 'allow') this.logins.set(event.sessionId, span.spanContext());
    }
    span.end(at.ms);
  }

  sessionEnded(event: SessionEndEvent): void {
    this.logins.delete(event.sessionId);
  }

  /**
   * A span in the audit event's trace: the caller's child when it sent a traceparent, else the
   * root of the trace meshgate made (RecordedTraceIds hands the SDK that id).
   */
  private start(name: string, kind: SpanKind, startMs: number, traceId: string, parent: TraceParent | null, login?: SpanContext, spanId: string | null = null): Span {
    const links: Link[] = login === undefined ? [] : [{ context: login, attributes: { 'meshgate.link': 'login' } }];
    const options = { kind, startTime: startMs, links };
    if (parent !== null) {
      const flags = Number.parseInt(parent.flags, 16) & TraceFlags.SAMPLED;
      return this.tracer.startSpan(name, options, trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: parent.spanId, traceFlags: flags, isRemote: true }));
    }
    return this.ids.startWith(traceId, () => this.tracer.startSpan(name, options, ROOT_CONTEXT), spanId);
  }

  private step(parent: Span, name: string, startMs: number, endMs: number, attributes: Attributes, error: SpanError | null): void {
    const span = this.tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: startMs, attributes }, trace.setSpan(ROOT_CONTEXT, parent));
    markError(span, error);
    span.end(endMs);
  }
}

function markError(span: Span, error: SpanError | null): void {
  if (error === null) return;
  span.setAttribute(ATTR_ERROR_TYPE, error.type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

function identityOf(event: ConnectionEvent | RpcEvent): Attributes {
  return event.identity === null ? {} : identityAttributes(event.identity);
}

/** The step a refused login stopped at: the last it reached (a throttle or audit refusal after policy is no step's fault). */
function failedStep(event: ConnectionEvent, timing: LoginTiming): 'identity' | 'policy' | 'upstream' | null {
  if (timing.upstream !== undefined) return 'upstream';
  if (timing.decided !== undefined) return event.error?.code === 'MG_POLICY_DENIED' ? 'policy' : null;
  return event.identity === null ? 'identity' : null;
}
