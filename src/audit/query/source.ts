/**
 * Where `audit query` reads events from. The JSONL log is the one source today; an audit
 * kept in PostgreSQL by several replicas is meant to be a second implementation of the same
 * interface, so filters, the digest and the output never learn where events live.
 */
import type { EventFilter, TimeWindow } from './filter.ts';

export interface SourcedEvent {
  /** The event as stored: any JSON object, since a log can be edited; filters check each field. */
  readonly event: Readonly<Record<string, unknown>>;
  /** Where it is, for people: `audit.000002.jsonl:17`. */
  readonly where: string;
}

export interface AuditEventSource {
  /** What is read, for messages: a log's active file, later a table and its replicas. */
  readonly name: string;
  /**
   * Every event oldest first, a batch at a time (a log may be larger than memory; a batch is
   * what one read brought: a chunk of a file, a page of rows). `window` lets a source pass
   * over what cannot fall inside it (whole files, rows by index); it may also return events
   * outside it, which the caller's filter drops.
   */
  events(window: TimeWindow): AsyncIterable<readonly SourcedEvent[]>;
  /** What the last read passed over or could not be sure of, one sentence each, for after the results. */
  notes(): readonly string[];
}

/** The events that pass `filter`, oldest first, in batches, at most `limit` in all (reading stops there). */
export async function* queryEvents(source: AuditEventSource, filter: EventFilter, limit = Infinity): AsyncGenerator<SourcedEvent[]> {
  let left = limit;
  for await (const batch of source.events(filter.window)) {
    if (left <= 0) return;
    const found: SourcedEvent[] = [];
    for (const sourced of batch) {
      if (!filter.matches(sourced.event)) continue;
      found.push(sourced);
      if (--left <= 0) break;
    }
    if (found.length > 0) yield found;
  }
}
