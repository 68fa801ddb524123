/**
 * The throttle section compiled once into plain numbers (ms, per-ms rates), so the admit path
 * does no parsing and no lookups beyond the class's own record.
 */
import type { ThrottleConfig } from '../config/schema.ts';
import { waitDurationMs } from '../config/throttle-schema.ts';

export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

export interface Limits {
  readonly rate: RateLimit | null;
  readonly concurrency: number | null;
  readonly sessions: number | null;
  /** Logins (new sessions) per second: a reconnect storm is refused before it reaches MariaDB. */
  readonly logins: RateLimit | null;
}

/** Over a limit: refuse at once, or wait in a queue of `queue` for at most `timeoutMs`. */
export type OverLimit = { readonly wait: { readonly queue: number; readonly timeoutMs: number } } | 'refuse';

export interface ClassSettings extends Limits {
  readonly name: string;
  readonly priority: number;
  /** Null when the class has no per-identity limit (no identity state is kept then). */
  readonly perIdentity: Limits | null;
  readonly overLimit: OverLimit;
}

export interface BudgetSettings {
  readonly connections: number;
  readonly reserved: Readonly<Record<string, number>>;
  readonly roles: Readonly<Record<string, number>>;
}

/** Where rates are shared across replicas; the URL is still a reference until readSecret resolves it. */
export interface SharedSettings {
  readonly url: string | { readonly env: string } | { readonly file: string };
  readonly keyPrefix: string;
  readonly timeoutMs: number;
}

export interface ThrottleSettings {
  readonly defaultClass: string;
  readonly classes: ReadonlyMap<string, ClassSettings>;
  readonly upstream: BudgetSettings | null;
  /** The Firestore stream budget, in the same shape (streams as connections, no roles). */
  readonly firestore: BudgetSettings | null;
  /** Null: every replica limits on its own. */
  readonly shared: SharedSettings | null;
}

type RateInput = { readonly perSecond: number; readonly burst?: number | undefined } | undefined;
type LimitsInput = { readonly rate?: RateInput; readonly concurrency?: number | undefined; readonly sessions?: number | undefined; readonly logins?: RateInput };

const rateOf = (input: RateInput): RateLimit | null => (input === undefined ? null : { perSecond: input.perSecond, burst: input.burst ?? Math.max(1, Math.ceil(input.perSecond)) });

function limitsOf(input: LimitsInput): Limits {
  return { rate: rateOf(input.rate), concurrency: input.concurrency ?? null, sessions: input.sessions ?? null, logins: rateOf(input.logins) };
}

const isEmpty = (limits: Limits) => limits.rate === null && limits.concurrency === null && limits.sessions === null && limits.logins === null;

/** Settings from a validated `throttle` section (the schema has checked every cross-reference). */
export function throttleSettings(config: ThrottleConfig): ThrottleSettings {
  const classes = new Map<string, ClassSettings>();
  for (const [name, cls] of Object.entries(config.classes)) {
    const perIdentity = cls.perIdentity === undefined ? null : limitsOf(cls.perIdentity);
    classes.set(name, {
      name,
      priority: cls.priority,
      ...limitsOf(cls),
      perIdentity: perIdentity === null || isEmpty(perIdentity) ? null : perIdentity,
      overLimit: cls.overLimit === 'refuse' ? 'refuse' : { wait: { queue: cls.overLimit.wait.queue, timeoutMs: waitDurationMs(cls.overLimit.wait.timeout) } },
    });
  }
  const upstream = config.upstream === undefined ? null : { connections: config.upstream.connections, reserved: { ...config.upstream.reserved }, roles: { ...config.upstream.roles } };
  const firestore = config.firestore === undefined ? null : { connections: config.firestore.streams, reserved: { ...config.firestore.reserved }, roles: {} };
  const redis = config.shared?.redis;
  const shared = redis === undefined ? null : { url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: waitDurationMs(redis.timeout) };
  return { defaultClass: config.defaultClass, classes, upstream, firestore, shared };
}
