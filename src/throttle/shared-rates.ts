/**
 * Rate limits shared by every meshgate replica through one Redis (issue 14): each class-wide
 * and per-identity token bucket lives in Redis, and each replica leases a few tokens at a time
 * (shared-bucket.ts), so the per-statement path stays local and N replicas hold one limit.
 *
 * When Redis is unreachable or slower than `timeout`, every bucket falls back to a local one at
 * 1/N of its rate (N: the replicas Redis last reported; 1, the full rate, when it never
 * answered), said once in the log; a probe with backoff brings the replica back to shared
 * mode when Redis answers again, said once too. Concurrency and session counts stay local.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../log.ts';
import { LEASE_SCRIPT, type LeaseReply } from './shared-script.ts';
import type { RateBucket } from './bucket.ts';
import type { BucketSource } from './class-state.ts';
import { SharedBucket, type LeaseSource } from './shared-bucket.ts';

export interface SharedRatesOptions {
  /** A redis:// or rediss:// URL, secrets already read (readSecret). */
  readonly url: string;
  /** Every replica sharing limits uses the same prefix. */
  readonly keyPrefix: string;
  /** A lease request slower than this counts as Redis unreachable. */
  readonly timeoutMs: number;
  /** This replica's name in the replicas set (default: host name and pid). */
  readonly replicaId?: string;
  readonly logger?: Logger;
  /** Where the log says what it is (the URL without credentials). */
  readonly describe?: string;
}

export interface SharedRatesState {
  readonly mode: 'shared' | 'local';
  /** Times this replica fell back to local buckets (a Prometheus counter). */
  readonly fallbacks: number;
  readonly recoveries: number;
  /** Replicas Redis last reported sharing the limits (1 before it ever answered). */
  readonly replicas: number;
  /** Lease requests sent and failed (counters). */
  readonly leases: number;
  readonly leaseErrors: number;
}

/** A replica unseen this long is no longer counted in the local share. */
const REPLICA_TTL_MS = 10_000;
const PROBE_FIRST_MS = 100;
const PROBE_MAX_MS = 5_000;

const SHA = createHash('sha1').update(LEASE_SCRIPT).digest('hex');

export class SharedRates implements LeaseSource, BucketSource {
  shared = true;
  replicas = 1;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #replicasKey: string;
  readonly #replicaId: string;
  readonly #log: Logger;
  readonly #where: string;
  readonly #buckets = new Set<SharedBucket>();
  #fallbacks = 0;
  #recoveries = 0;
  #leases = 0;
  #leaseErrors = 0;
  #probe: NodeJS.Timeout | null = null;
  #probeMs = PROBE_FIRST_MS;
  #closed = false;

  constructor(options: SharedRatesOptions) {
    this.#prefix = options.keyPrefix;
    this.#replicasKey = `${options.keyPrefix}replicas`;
    this.#replicaId = options.replicaId ?? `${hostname()}:${process.pid}`;
    this.#log = options.logger ?? silentLogger;
    this.#where = options.describe ?? redactedUrl(options.url);
    this.#redis = new Redis(options.url, {
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(1_000, options.timeoutMs),
      // Fail at once while disconnected: a statement must never queue behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Reconnect forever, backing off to 2 s; the probe below decides when shared mode is back.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
      lazyConnect: true,
    });
    // Errors surface as failed leases (logged once, on fallback); ioredis would print each one.
    this.#redis.on('error', () => {});
    this.#redis.on('ready', () => {
      if (!this.shared && !this.#closed) this.#tryRecover();
    });
  }

  /**
   * Connects, waiting at most `waitMs`; when Redis does not answer by then, starts in local
   * mode (logged) and keeps trying. Never rejects.
   */
  static async connect(options: SharedRatesOptions, waitMs = Math.max(1_000, options.timeoutMs)): Promise<SharedRates> {
    const rates = new SharedRates(options);
    await rates.#start(waitMs);
    return rates;
  }

  async #start(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const connected = this.#redis.connect().then(() => this.#redis.script('LOAD', LEASE_SCRIPT));
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)));
    try {
      if ((await Promise.race([connected, late])) === 'late') this.#fallBack(new Error(`no answer within ${waitMs} ms`));
    } catch (error) {
      this.#fallBack(error);
    } finally {
      clearTimeout(timer);
      connected.catch(() => {});
    }
  }

  /** The bucket for `key` (e.g. `class:standard`, `identity:standard:<spiffe id>`), one rate. */
  bucket(key: string, perSecond: number, burst: number, nowMs: number): SharedBucket {
    const bucket = new SharedBucket(this, key, perSecond, burst, nowMs);
    this.#buckets.add(bucket);
    // The first lease is asked for now: a class's bucket, made at start, has tokens by the first statement.
    bucket.refill(nowMs);
    return bucket;
  }

  /** Forgets a bucket no longer used (an idle identity), giving its unspent tokens back. */
  drop(bucket: RateBucket): void {
    if (!(bucket instanceof SharedBucket) || !this.#buckets.delete(bucket)) return;
    void this.#giveBack(bucket);
  }

  get state(): SharedRatesState {
    return {
      mode: this.shared ? 'shared' : 'local',
      fallbacks: this.#fallbacks,
      recoveries: this.#recoveries,
      replicas: this.replicas,
      leases: this.#leases,
      leaseErrors: this.#leaseErrors,
    };
  }

  lease(bucket: SharedBucket, want: number, owedSent: number): void {
    this.#leases++;
    this.#call(bucket, want, 0).then(
      ([granted, waitMs, replicas]) => {
        this.replicas = Math.max(1, replicas);
        bucket.leased(granted, owedSent, waitMs);
      },
      (error: unknown) => {
        this.#leaseErrors++;
        bucket.failed();
        this.#fallBack(error);
      },
    );
  }

  /** Gives every unspent lease back, stops probing and disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#probe !== null) clearTimeout(this.#probe);
    if (this.shared && this.#redis.status === 'ready') {
      await Promise.allSettled([...this.#buckets].map((bucket) => this.#giveBack(bucket)));
    }
    this.#buckets.clear();
    this.#redis.disconnect();
  }

  async #giveBack(bucket: SharedBucket): Promise<void> {
    const back = bucket.surrender();
    if (back > 0 && this.shared) await this.#call(bucket, 0, back).catch(() => {});
  }

  async #call(bucket: SharedBucket, want: number, giveBack: number): Promise<LeaseReply> {
    const keys = [this.#prefix + bucket.key, this.#replicasKey];
    const args = [bucket.perSecond, bucket.burst, want, giveBack, this.#replicaId, REPLICA_TTL_MS];
    try {
      return (await this.#redis.evalsha(SHA, 2, ...keys, ...args)) as LeaseReply;
    } catch (error) {
      // A Redis restarted (or flushed) forgets scripts: load it again, once.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      await this.#redis.script('LOAD', LEASE_SCRIPT);
      return (await this.#redis.evalsha(SHA, 2, ...keys, ...args)) as LeaseReply;
    }
  }

  #fallBack(error: unknown): void {
    if (this.#closed || !this.shared) return;
    this.shared = false;
    this.#fallbacks++;
    this.#log.warn('throttle: Redis unreachable, rates fall back to local buckets', {
      redis: this.#where,
      error: error instanceof Error ? error.message : String(error),
      replicas: this.replicas,
      share: `1/${this.replicas} of each rate per replica until Redis answers again`,
      check: 'that Redis is up and reachable from this replica (throttle.shared.redis.url), and its latency under throttle.shared.redis.timeout',
    });
    this.#probeMs = PROBE_FIRST_MS;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#probe !== null) return;
    this.#probe = setTimeout(() => {
      this.#probe = null;
      this.#tryRecover();
    }, this.#probeMs);
    this.#probe.unref();
    this.#probeMs = Math.min(PROBE_MAX_MS, this.#probeMs * 2);
  }

  #tryRecover(): void {
    if (this.#closed || this.shared) return;
    const probe = this.#redis.status === 'ready' ? this.#redis.script('LOAD', LEASE_SCRIPT) : Promise.reject(new Error(this.#redis.status));
    probe.then(
      () => {
        if (this.#closed || this.shared) return;
        this.shared = true;
        this.#recoveries++;
        if (this.#probe !== null) clearTimeout(this.#probe);
        this.#probe = null;
        for (const bucket of this.#buckets) bucket.wake();
        this.#log.info('throttle: Redis answers again, rates are shared across replicas again', { redis: this.#where, fallbacks: this.#fallbacks });
      },
      () => {
        // Answers late a second time: the connection may never answer again (a partition
        // without a reset). A fresh one, so recovery does not wait for TCP to give up on it.
        if (this.#redis.status === 'ready') this.#redis.disconnect(true);
        this.#schedule();
      },
    );
  }
}

/** The URL for the log: scheme, host and port, never a password. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'redis (unparsable URL)';
  }
}
