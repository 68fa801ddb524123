/**
 * The `throttle` section: service classes (a policy rule names one; `defaultClass` where none
 * does) with rate, concurrency and session limits, per class and per identity inside it, what
 * happens over a limit (wait in a bounded queue, or refuse at once), and the upstream
 * connection budget the classes share. Absent: everything is admitted, at no cost.
 *
 * Cross-field checks (the default class exists, reserved shares fit the budget) are made here
 * as custom issues, so they read like every other config problem: path, then the fix.
 */
import { z } from 'zod';

/** Queue timeouts are often sub-second (interactive callers), so ms is allowed here. */
const WAIT_DURATION = /^\d{1,9}(ms|s|m)$/;
const WAIT_DURATION_TEXT = 'a duration: a whole number and one unit, ms, s or m (e.g. 250ms, 2s, 1m)';
const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/** Milliseconds of a duration the schema accepted (`250ms`, `2s`, `1m`). */
export function waitDurationMs(text: string): number {
  const match = /^(\d{1,9})(ms|s|m)$/.exec(text);
  if (match === null) throw new TypeError(`not a wait duration: ${text}`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** Class names become metric labels and policy values: short, lower-case, no spaces. */
const CLASS_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const CLASS_NAME_TEXT = 'a service class name: a lower-case letter, then up to 62 lower-case letters, digits, _ and -';

// Bounds read as "must be at least 1, got …" (describe.ts words them); a refinement's message is used as written.
const count = () => z.number().int().min(1).max(1_000_000);

const rate = z
  .strictObject({
    /** Sustained statements (MariaDB) or calls (Firestore) per second; fractions allowed (0.5: one every 2 s). */
    perSecond: z.number().positive().max(1_000_000),
    /** What a rested bucket may spend at once; default: one second's worth (at least 1). */
    burst: z
      .number()
      .int()
      .max(10_000_000)
      .refine((burst) => burst >= 1, 'a burst of at least 1: with less, not even one statement could ever pass')
      .optional(),
  })
  .describe('a token bucket: { perSecond: 100, burst: 200 }');

const limits = {
  rate: rate.optional(),
  /** In-flight statements (MariaDB) or calls (Firestore) at once. */
  concurrency: count().optional(),
  /** Open sessions (MariaDB connections through meshgate). */
  sessions: count().optional(),
  /** Logins (new MariaDB sessions) per second, as a token bucket: { perSecond: 5, burst: 20 }. */
  logins: rate.optional(),
};

const overLimit = z
  .union([
    z.literal('refuse'),
    z.strictObject({
      wait: z.strictObject({
        /** Callers waiting at once; one more is refused at once (MG_THROTTLED). */
        queue: z.number().int().min(1).max(100_000),
        /** How long one may wait before it is refused (MG_THROTTLE_TIMEOUT). */
        timeout: z
          .string()
          .regex(WAIT_DURATION, WAIT_DURATION_TEXT)
          .refine((text) => !WAIT_DURATION.test(text) || waitDurationMs(text) > 0, 'a timeout longer than zero; for no wait, write overLimit: refuse')
          .meta({ expected: WAIT_DURATION_TEXT }),
      }),
    }),
  ])
  .meta({ expected: "'refuse', or { wait: { queue: 100, timeout: 2s } }" });

const serviceClass = z
  .strictObject({
    /** Higher wins: served first when callers wait for the same capacity. */
    priority: z.number().int().min(-1000).max(1000).default(0),
    ...limits,
    /** The same limits for each identity (SPIFFE ID) inside the class. */
    perIdentity: z.strictObject(limits).optional(),
    overLimit: overLimit.default('refuse'),
  })
  .describe('a service class: { priority: 100, rate: { perSecond: 500 }, concurrency: 50, overLimit: refuse }');

const upstream = z
  .strictObject({
    /** Connections meshgate opens to the MariaDB server at most, all classes together; keep it under max_connections. */
    connections: z.number().int().min(1).max(100_000).describe('the connection budget per MariaDB server, e.g. 200 (under its max_connections)'),
    /** Connections only this class may use, whatever the others hold. */
    reserved: z.record(z.string().regex(CLASS_NAME, CLASS_NAME_TEXT), z.number().int().min(1).max(100_000)).default({}),
    /** Caps per MariaDB role, inside the budget. */
    roles: z.record(z.string().regex(/^[A-Za-z0-9_$]{1,64}$/, 'a MariaDB role name: 1 to 64 letters, digits, _ and $'), z.number().int().min(1).max(100_000)).default({}),
  })
  .describe('the upstream connection budget: { connections: 200, reserved: { critical: 20 } }');

/** As schema.ts's secretRef (kept here so throttleSection() stands alone, as its callers use it). */
const secretRef = z
  .union([
    z.strictObject({ env: z.string().min(1).describe('the name of the environment variable holding the Redis URL') }),
    z.strictObject({ file: z.string().min(1).describe('the path of a file holding the Redis URL (one line)') }),
  ])
  .meta({ secret: true, expected: '{ file: PATH } or { env: VARIABLE }' });

const REDIS_URL = /^rediss?:\/\/[^\s]+$/;
const REDIS_URL_TEXT = 'a Redis URL, redis://host:port or rediss://host:port (TLS); with a password, put the URL in { env: VARIABLE } or { file: PATH }';

/** Keys are `<prefix>class:<name>` and `<prefix>identity:<class>:<principal>`, plus `<prefix>replicas`. */
export const DEFAULT_SHARED_PREFIX = 'meshgate:throttle:';

const shared = z
  .strictObject({
    redis: z.strictObject({
      /** Plain when it holds no password; a secret reference otherwise (a password in the YAML is refused). */
      url: z
        .union([
          z
            .string()
            .regex(REDIS_URL, REDIS_URL_TEXT)
            .refine((url) => !/^rediss?:\/\/[^/@]*@/.test(url), 'a Redis URL without credentials: put a URL with a password in { env: VARIABLE } or { file: PATH }'),
          secretRef,
        ])
        .meta({ expected: `${REDIS_URL_TEXT}` }),
      /** Every replica sharing a limit must use the same prefix; two meshgate fleets on one Redis use two. */
      keyPrefix: z
        .string()
        .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'a Redis key prefix: 1 to 64 letters, digits and : _ . -, e.g. meshgate:throttle:')
        .default(DEFAULT_SHARED_PREFIX),
      /** How long a lease request may take before this replica falls back to local buckets. */
      timeout: z
        .string()
        .regex(WAIT_DURATION, WAIT_DURATION_TEXT)
        .refine((text) => !WAIT_DURATION.test(text) || (waitDurationMs(text) >= 1 && waitDurationMs(text) <= 10_000), 'a timeout from 1ms to 10s: longer would hold statements waiting on Redis')
        .default('50ms')
        .meta({ expected: WAIT_DURATION_TEXT }),
    }).describe('the Redis every replica shares: { url: { env: REDIS_URL } } or { url: redis://redis.infra:6379 }'),
  })
  .describe('rates shared by the replicas through Redis: { redis: { url: { env: REDIS_URL } } }');

export const THROTTLE_TEXT = 'service classes: { defaultClass: default, classes: { default: { rate: { perSecond: 100 } } } }';

export function throttleSection() {
  return z
    .strictObject({
      /** The class of a caller whose policy rule names none (policy's own default is `default`). */
      defaultClass: z.string().regex(CLASS_NAME, CLASS_NAME_TEXT).default('default'),
      classes: z.record(z.string().regex(CLASS_NAME, CLASS_NAME_TEXT), serviceClass).meta({ expected: 'a mapping of class names to their limits' }),
      upstream: upstream.optional(),
      /** Concurrent calls (gRPC streams) to the Firestore upstream, shared by the classes as `upstream` shares connections. */
      firestore: z
        .strictObject({
          streams: z.number().int().min(1).max(1_000_000).describe('concurrent calls to Firestore at most, e.g. 500'),
          reserved: z.record(z.string().regex(CLASS_NAME, CLASS_NAME_TEXT), z.number().int().min(1).max(1_000_000)).default({}),
        })
        .describe('the Firestore stream budget: { streams: 500, reserved: { critical: 50 } }')
        .optional(),
      /** Rate limits shared across replicas through Redis (shared-rates.ts). Absent: each replica limits on its own. */
      shared: shared.optional(),
    })
    .superRefine((section, ctx) => {
      for (const problem of throttleProblems(section)) ctx.addIssue({ code: 'custom', ...problem });
    })
    .describe(THROTTLE_TEXT);
}

type ThrottleSection = z.output<ReturnType<typeof throttleSection>>;
type ClassConfig = ThrottleSection['classes'][string];

/** Settings that are each valid but cannot work together. */
function throttleProblems(section: ThrottleSection): { path: PropertyKey[]; message: string }[] {
  const problems: { path: PropertyKey[]; message: string }[] = [];
  const names = Object.keys(section.classes);
  const known = names.length === 0 ? 'none is defined' : `defined: ${names.join(', ')}`;
  if (!names.includes(section.defaultClass)) {
    problems.push({
      path: ['defaultClass'],
      message: `the default class "${section.defaultClass}" is not under throttle.classes (${known}): define it there, or name one of them as defaultClass`,
    });
  }
  for (const [name, cls] of Object.entries(section.classes)) problems.push(...classProblems(name, cls));
  const budget = section.upstream;
  if (budget !== undefined) {
    let reserved = 0;
    for (const [name, share] of Object.entries(budget.reserved)) {
      reserved += share;
      if (!names.includes(name)) problems.push({ path: ['upstream', 'reserved', name], message: `"${name}" is not a class under throttle.classes (${known}): reserve connections for a defined class` });
    }
    if (reserved > budget.connections) {
      problems.push({
        path: ['upstream', 'reserved'],
        message: `the reserved shares add up to ${reserved} connections, more than the budget of ${budget.connections} (throttle.upstream.connections): lower them or raise the budget`,
      });
    }
    for (const [role, cap] of Object.entries(budget.roles)) {
      if (cap > budget.connections) problems.push({ path: ['upstream', 'roles', role], message: `a cap of ${cap} connections is above the whole budget of ${budget.connections}: it could never be reached; lower it or raise throttle.upstream.connections` });
    }
  }
  const streams = section.firestore;
  if (streams !== undefined) {
    let reserved = 0;
    for (const [name, share] of Object.entries(streams.reserved)) {
      reserved += share;
      if (!names.includes(name)) problems.push({ path: ['firestore', 'reserved', name], message: `"${name}" is not a class under throttle.classes (${known}): reserve streams for a defined class` });
    }
    if (reserved > streams.streams) {
      problems.push({ path: ['firestore', 'reserved'], message: `the reserved shares add up to ${reserved} streams, more than the budget of ${streams.streams} (throttle.firestore.streams): lower them or raise the budget` });
    }
  }
  return problems;
}

function classProblems(name: string, cls: ClassConfig): { path: PropertyKey[]; message: string }[] {
  const problems: { path: PropertyKey[]; message: string }[] = [];
  const inner = cls.perIdentity;
  if (inner === undefined) return problems;
  // An identity limit above its class's is never reached: almost always a typo of the other.
  for (const key of ['concurrency', 'sessions'] as const) {
    const own = inner[key];
    const whole = cls[key];
    if (own !== undefined && whole !== undefined && own > whole) {
      problems.push({
        path: ['classes', name, 'perIdentity', key],
        message: `${own} per identity is above the class's own ${key} of ${whole}: it could never be reached; lower it, or raise throttle.classes.${name}.${key}`,
      });
    }
  }
  return problems;
}
