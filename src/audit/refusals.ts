/**
 * Refusals of callers nobody has identified yet — a TLS 1.0 client, a failed or timed-out
 * handshake, bytes that are not the protocol, a missing or untrusted certificate — cost the
 * sender next to nothing and can come by the thousand. Each is audited, but a flood must not
 * fill the disk: per minute, at most `perPeer` events per (engine, peer address, code) and at
 * most `total` in all are written one by one; the rest are counted, and when the minute is
 * over (or at shutdown) one summary per (engine, address, code) says how many, with
 * `repeats: { count, since }`. Beyond `maxKeys` addresses in a minute, the counts go under
 * address `*`. So a flood adds at most total + maxKeys + (engines × codes) events a minute.
 */
import { auditTime } from './clock.ts';
import type { ConnectionEvent } from './types.ts';

export interface RefusalLimits {
  readonly perPeer: number;
  readonly total: number;
  readonly maxKeys: number;
  readonly intervalMs: number;
}

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = { perPeer: 5, total: 100, maxKeys: 256, intervalMs: 60_000 };

interface Counted {
  /** Written one by one this minute. */
  written: number;
  /** Counted instead; the last one stands for them in the summary. */
  suppressed: number;
  since: string | null;
  last: ConnectionEvent | null;
}

export class RefusalLimiter {
  private readonly counts = new Map<string, Counted>();
  private written = 0;
  private windowStart: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly emit: (event: ConnectionEvent) => void,
    private readonly limits: RefusalLimits = DEFAULT_REFUSAL_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = now();
  }

  /** Writes the refusal, or counts it; true when it was written now. */
  admit(event: ConnectionEvent): boolean {
    if (this.now() - this.windowStart >= this.limits.intervalMs) this.flush();
    const code = String(event.error?.code ?? '');
    let key = `${event.engine}\0${event.peer.address}\0${code}`;
    let counted = this.counts.get(key);
    if (counted === undefined && this.counts.size >= this.limits.maxKeys) {
      key = `${event.engine}\0*\0${code}`;
      counted = this.counts.get(key);
      event = { ...event, peer: { address: '*', port: 0 } };
    }
    if (counted === undefined) this.counts.set(key, (counted = { written: 0, suppressed: 0, since: null, last: null }));
    if (counted.written < this.limits.perPeer && this.written < this.limits.total && event.peer.address !== '*') {
      counted.written++;
      this.written++;
      this.emit(event);
      return true;
    }
    counted.suppressed++;
    counted.since ??= event.time;
    counted.last = event;
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.limits.intervalMs - this.now()));
    this.timer.unref();
    return false;
  }

  /** Writes the summaries of what was counted, and starts a new minute. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const counts = [...this.counts.values()];
    this.counts.clear();
    this.written = 0;
    this.windowStart = this.now();
    for (const { suppressed, since, last } of counts) {
      if (suppressed === 0 || last === null || since === null) continue;
      this.emit({ ...last, time: auditTime(this.now()), repeats: { count: suppressed, since } });
    }
  }
}
