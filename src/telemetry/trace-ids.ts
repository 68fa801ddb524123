/**
 * The ids of meshgate's spans. A span whose caller sent a traceparent is its child and takes
 * its trace id from it; a span meshgate starts itself must still carry the trace id the audit
 * event already records (and the tag MariaDB saw), so the SDK is handed that id for the one
 * span about to start instead of a random one.
 */
import { RandomIdGenerator, type IdGenerator } from '@opentelemetry/sdk-trace-base';

export class RecordedTraceIds implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  private next: string | null = null;
  private nextSpan: string | null = null;

  /** Runs `start` with `traceId` as the id of any new trace it begins (and `spanId`, when given, as its span's). */
  startWith<T>(traceId: string, start: () => T, spanId: string | null = null): T {
    this.next = traceId;
    this.nextSpan = spanId;
    try {
      return start();
    } finally {
      this.next = null;
      this.nextSpan = null;
    }
  }

  generateTraceId(): string {
    const id = this.next;
    this.next = null;
    return id ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    const id = this.nextSpan;
    this.nextSpan = null;
    return id ?? this.random.generateSpanId();
  }
}
