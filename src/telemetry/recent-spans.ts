/**
 * The spans this replica ended lately, by trace id: what `meshgate probe` (through the admin
 * API) checks its own request against, without access to the collector they went to. A
 * bounded map: the oldest traces go first, and a span is a few short strings.
 */
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SpanSummary {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly name: string;
  /** meshgate.identity: the caller's SPIFFE ID, where the span has one. */
  readonly identity: string | null;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
}

/** Traces kept; a probe asks within seconds of its request. */
const MAX_TRACES = 1024;

export class RecentSpans implements SpanProcessor {
  private readonly traces = new Map<string, SpanSummary[]>();

  of(traceId: string): readonly SpanSummary[] {
    return this.traces.get(traceId) ?? [];
  }

  onStart(_span: Span, _context: Context): void {}

  onEnd(span: ReadableSpan): void {
    const context = span.spanContext();
    const attributes: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(span.attributes)) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') attributes[key] = value;
    }
    const summary: SpanSummary = {
      traceId: context.traceId,
      spanId: context.spanId,
      parentSpanId: span.parentSpanContext?.spanId ?? null,
      name: span.name,
      identity: typeof attributes['meshgate.identity'] === 'string' ? attributes['meshgate.identity'] : null,
      attributes,
    };
    const known = this.traces.get(context.traceId);
    if (known !== undefined) {
      known.push(summary);
      return;
    }
    this.traces.set(context.traceId, [summary]);
    if (this.traces.size > MAX_TRACES) this.traces.delete(this.traces.keys().next().value!);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.traces.clear();
    return Promise.resolve();
  }
}
