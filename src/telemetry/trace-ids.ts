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

  /** Runs `start` with `traceId` as the id of any new trace it begins. */
  startWith<T>(traceId: string, start: () => T): T {
    this.next = traceId;
    try {
      return start();
    } finally {
      this.next = null;
    }
  }

  generateTraceId(): string {
    const id = this.next;
    this.next = null;
    return id ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.random.generateSpanId();
  }
}
