/**
 * The digest view: statements and Firestore calls grouped by fingerprint (digest-key.ts),
 * like ProxySQL's stats_mysql_query_digest: how often each ran, how long it took in total
 * and at the 99th percentile, the rows it returned and changed, and who ran it. Memory is
 * bounded by the number of distinct fingerprints, not by the log: past MAX_DIGESTS, further
 * new fingerprints are counted in one row of their own.
 */
import { digestId, digestKeyOf } from './digest-key.ts';
import type { EventFilter } from './filter.ts';
import { QuantileSketch } from './sketch.ts';
import type { AuditEventSource } from './source.ts';

export const MAX_DIGESTS = 50_000;
/** Identities named per digest; more are counted, not named. */
export const MAX_IDENTITIES = 1000;
const OVERFLOW_FINGERPRINT = `(other: more than ${MAX_DIGESTS} distinct fingerprints)`;

export interface DigestRow {
  readonly id: string;
  readonly engine: string;
  readonly fingerprint: string;
  readonly count: number;
  /** Outcome failed or unknown (refusals included). */
  readonly failed: number;
  readonly totalUs: number;
  readonly p99Us: number | null;
  readonly maxUs: number | null;
  readonly rowsReturned: number;
  readonly rowsAffected: number;
  /** Firestore: documents the calls returned or wrote. */
  readonly documents: number;
  /** Most frequent first: principal (or SPIFFE ID) and how many of `count` it ran. */
  readonly identities: readonly { readonly identity: string; readonly count: number }[];
  /** Identities past MAX_IDENTITIES, counted only. */
  readonly otherIdentities: number;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
}

class Group {
  count = 0;
  failed = 0;
  totalUs = 0;
  rowsReturned = 0;
  rowsAffected = 0;
  documents = 0;
  readonly durations = new QuantileSketch();
  readonly identities = new Map<string, number>();
  otherIdentities = 0;
  firstSeen: string | null = null;
  lastSeen: string | null = null;

  constructor(
    readonly id: string,
    readonly engine: string,
    readonly fingerprint: string,
  ) {}

  add(event: Readonly<Record<string, unknown>>): void {
    this.count += 1;
    if (event['outcome'] === 'failed' || event['outcome'] === 'unknown') this.failed += 1;
    const duration = numberOf(event['durationUs']);
    this.totalUs += duration;
    this.durations.add(duration);
    this.rowsReturned += numberOf(event['rowsReturned']);
    this.rowsAffected += numberOf(event['rowsAffected']);
    this.documents += numberOf(event['documents']);
    const identity = event['identity'] as Record<string, unknown> | null | undefined;
    const who = typeof identity?.['principal'] === 'string' ? identity['principal'] : typeof identity?.['spiffeId'] === 'string' ? identity['spiffeId'] : '(none)';
    const seen = this.identities.get(who);
    if (seen !== undefined) this.identities.set(who, seen + 1);
    else if (this.identities.size < MAX_IDENTITIES) this.identities.set(who, 1);
    else this.otherIdentities += 1;
    const time = typeof event['time'] === 'string' ? event['time'] : null;
    if (time !== null) {
      if (this.firstSeen === null || time < this.firstSeen) this.firstSeen = time;
      if (this.lastSeen === null || time > this.lastSeen) this.lastSeen = time;
    }
  }

  row(): DigestRow {
    const identities = [...this.identities].map(([identity, count]) => ({ identity, count })).sort((a, b) => b.count - a.count || a.identity.localeCompare(b.identity));
    return {
      id: this.id,
      engine: this.engine,
      fingerprint: this.fingerprint,
      count: this.count,
      failed: this.failed,
      totalUs: this.totalUs,
      p99Us: roundOrNull(this.durations.quantile(0.99)),
      maxUs: this.durations.count === 0 ? null : this.durations.max,
      rowsReturned: this.rowsReturned,
      rowsAffected: this.rowsAffected,
      documents: this.documents,
      identities,
      otherIdentities: this.otherIdentities,
      firstSeen: this.firstSeen,
      lastSeen: this.lastSeen,
    };
  }
}

/** Non-negative finite numbers as written; anything else (an edited line) counts as 0. */
function numberOf(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

/** Every digest of the statement and rpc events that pass `filter`, by total time, longest first. */
export async function digestEvents(source: AuditEventSource, filter: EventFilter): Promise<DigestRow[]> {
  const groups = new Map<string, Group>();
  const overflowId = digestId('*', OVERFLOW_FINGERPRINT);
  for await (const batch of source.events(filter.window)) {
    for (const { event } of batch) {
      if (!filter.matches(event)) continue;
      const key = digestKeyOf(event);
      if (key === null) continue;
      let group = groups.get(key.id);
      if (group === undefined) {
        group = groups.size < MAX_DIGESTS ? new Group(key.id, key.engine, key.fingerprint) : (groups.get(overflowId) ?? new Group(overflowId, '*', OVERFLOW_FINGERPRINT));
        groups.set(group.id, group);
      }
      group.add(event);
    }
  }
  return [...groups.values()].map((g) => g.row()).sort((a, b) => b.totalUs - a.totalUs || b.count - a.count || a.fingerprint.localeCompare(b.fingerprint));
}
