/**
 * The meshgate configuration file. One schema, unknown keys rejected, defaults here and
 * nowhere else. Secrets are never inline: an upstream password comes from an environment
 * variable or a file, so the YAML can live in version control.
 */
import { z } from 'zod';
import { tokenVerifierConfigSchema } from '../identity/index.ts';
import { auditSection } from './audit-schema.ts';
import { metricsSection } from './metrics-schema.ts';
import { policySection } from './policy-schema.ts';
import { throttleSection } from './throttle-schema.ts';
import { tracingSection } from './tracing-schema.ts';

export { DEFAULT_AUDIT_DURABILITY } from './audit-schema.ts';

/*
 * Format messages are noun phrases ("a duration: …") and `.meta()` says what a field is for:
 * config errors read them as "expected <message>, got …" and "required: <description>".
 */
const DURATION = /^\d{1,9}[smhd]$/;
const DURATION_TEXT = 'a duration: a whole number and one unit, s, m, h or d (e.g. 90s, 15m, 4h)';
const duration = (fallback: string) => z.string().regex(DURATION, DURATION_TEXT).default(fallback);
const optionalDuration = () => z.string().regex(DURATION, DURATION_TEXT).optional();

const secretRef = z
  .union([
    z.strictObject({ env: z.string().min(1).describe('the name of the environment variable holding the secret') }),
    z.strictObject({ file: z.string().min(1).describe('the path of a file holding the secret (one line)') }),
  ])
  .meta({ secret: true, expected: '{ file: PATH } or { env: VARIABLE }' });

const mariadbUser = z.string().min(1).max(80).describe('the MariaDB user name');

const roleAccount = z.strictObject({
  user: mariadbUser,
  password: secretRef,
});

/** Said when meshgate's certificate is missing, wherever it would be written. */
export const CERT_TEXT = 'the PEM certificate meshgate presents to clients, e.g. tls/server.crt (`meshgate ca issue-server` writes one)';
export const LISTENER_TEXT = 'where MySQL clients connect: { port: 3307, tls: { cert: tls/server.crt, key: tls/server.key } }';
export const UPSTREAM_TEXT = 'the MariaDB server behind meshgate and the accounts meshgate uses there (upstream.credentials or upstream.roles)';


const sections = z.strictObject({
  /**
   * The MySQL engine: clients connect here. With `upstream`, it turns the engine on; a
   * configuration without either serves no MySQL and needs no MariaDB.
   */
  listener: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(3307),
    tls: z.strictObject({
      /**
       * `starttls`: the MySQL way, an SSLRequest after meshgate's greeting (drivers, the CLI).
       * `first-byte`: TLS from the first byte, as an Istio client sidecar originates it
       * (ISTIO_MUTUAL); the MySQL handshake runs inside.
       */
      mode: z.enum(['starttls', 'first-byte']).default('starttls'),
      /** Refuse clients that do not upgrade to TLS (there is no identity without it). */
      required: z.boolean().default(true),
      /** The older place for meshgate's certificate; the top-level `tls` names it for every port. */
      cert: z.string().min(1).describe(CERT_TEXT).optional(),
      key: z.string().min(1).describe('the PEM private key of listener.tls.cert, e.g. tls/server.key').optional(),
    }).describe('the TLS listener: { cert: tls/server.crt, key: tls/server.key }').default({ mode: 'starttls', required: true }),
    maxClientMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .default(64 * 1024 * 1024),
    /**
     * `handshake`: from accept to a finished login (TLS included); a client that is slower is
     * closed and the refusal audited. `drain`: how long a session whose client left (or that
     * meshgate is shutting down) waits for MariaDB's answers to statements already sent, so
     * their audit events say what MariaDB did; past it they are recorded as `unknown`.
     */
    timeouts: z.strictObject({ handshake: duration('10s'), drain: duration('10s') }).default({ handshake: '10s', drain: '10s' }),
  }).describe(LISTENER_TEXT).optional(),
  /**
   * meshgate's server certificate, presented on every port that speaks TLS: MySQL, Firestore
   * (`firestore.tls: mtls`), the signer and the admin API. One certificate, loaded once and
   * reloaded when its files change. Configurations that predate it name it under
   * listener.tls; either place, not both.
   */
  tls: z
    .strictObject({
      cert: z.string().min(1).describe(CERT_TEXT),
      key: z.string().min(1).describe('the PEM private key of tls.cert, e.g. tls/server.key'),
    })
    .describe("meshgate's server certificate for every port: { cert: tls/server.crt, key: tls/server.key }")
    .optional(),
  trust: z.strictObject({
    bundles: z
      .array(z.string().min(1))
      .min(1)
      .meta({ expected: 'a list of PEM file paths', description: "PEM roots that sign workload certificates, e.g. [tls/bundle.pem] (meshgate's CA bundle or Istio's root-cert.pem)" }),
    trustDomains: z
      .array(z.string().min(1))
      .min(1)
      .meta({ expected: 'a list of trust domain names', description: 'the SPIFFE trust domains whose identities are accepted, e.g. [cluster.local]' }),
  }).describe('whose client certificates identify workloads: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }'),
  /** The MariaDB behind the MySQL engine; present exactly when `listener` is. */
  upstream: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(3306),
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
    /**
     * TLS to MariaDB with meshgate's own client certificate. With dynamic credentials, lease
     * accounts are created `REQUIRE SUBJECT … AND ISSUER …` naming it, so a lease password is
     * useless without meshgate's key. `verify-full`: MariaDB's certificate chains to `ca` and
     * names `host`; `verify-ca`: the chain only.
     */
    tls: z
      .strictObject({
        ca: z.string().min(1).describe("the PEM CA that signs MariaDB's ssl_cert, e.g. tls/mariadb-ca.pem"),
        cert: z.string().min(1).describe("meshgate's PEM client certificate toward MariaDB, e.g. tls/upstream.crt (`meshgate ca issue-server --dns meshgate-upstream --name upstream`)"),
        key: z.string().min(1).describe('the PEM private key of upstream.tls.cert, e.g. tls/upstream.key'),
        verify: z.enum(['verify-full', 'verify-ca']).default('verify-full'),
      })
      .describe("TLS to MariaDB with meshgate's client certificate: { ca: tls/mariadb-ca.pem, cert: tls/upstream.crt, key: tls/upstream.key }")
      .optional(),
    /** Static accounts, one per role, shared by every identity (the first engine's way). */
    roles: z
      .record(z.string().regex(/^[A-Za-z0-9_$]{1,64}$/, 'a MariaDB role name: 1 to 64 letters, digits, _ and $'), roleAccount)
      .meta({ expected: 'a mapping of role names to { user, password: { file: … } }' })
      .default({}),
    /**
     * Dynamic credentials (recommended): meshgate creates a MariaDB account per identity and
     * role with a random password, grants it the role, and drops it when the lease ends.
     */
    credentials: z
      .strictObject({
        /** meshgate's administrative account: CREATE USER, SELECT on mysql.user, PROCESS, CONNECTION ADMIN, each role WITH ADMIN OPTION. */
        admin: z
          .strictObject({ user: mariadbUser, password: secretRef })
          .describe("meshgate's MariaDB admin account: { user: meshgate_admin, password: { file: secrets/admin } }"),
        /** Host part of the accounts meshgate creates; they must be able to log in from meshgate's address. */
        userHost: z.string().min(1).max(255).default('%'),
        /** Session leases: renewed while sessions use them, rotated before their max TTL. */
        sessionTtl: duration('1h'),
        sessionMaxTtl: duration('24h'),
        /** Leases handed out by `creds issue` for a direct connection (CI). */
        issuedTtl: duration('15m'),
        issuedMaxTtl: duration('1h'),
        /**
         * Per identity: live direct credentials at once, and how many it may be issued a minute
         * (a burst of that many, then one every 60/n s). Past either, `creds issue` is refused
         * with MG_DIRECT_CREDS_LIMIT (HTTP 429, Retry-After).
         */
        issuedMaxLive: z.number().int().min(1).max(1000).default(5),
        issuedPerMinute: z.number().int().min(1).max(10_000).default(5),
        /** Rotate the admin password this often (needs admin.password from a file); absent: only by `creds rotate-root`. */
        rotateAdminEvery: optionalDuration(),
        /** How often leases are renewed and expired ones reaped. */
        sweepInterval: duration('30s'),
      })
      .optional(),
    pool: z
      .strictObject({
        maxIdlePerKey: z.number().int().min(0).max(1000).default(16),
        idleTimeout: duration('5m'),
      })
      .default({ maxIdlePerKey: 16, idleTimeout: '5m' }),
  }).describe(UPSTREAM_TEXT).optional(),
  /**
   * Where leases live. Embedded (default): a directory, nothing to set up, one host.
   * PostgreSQL: several meshgate replicas share leases; any renews or revokes any.
   */
  state: z
    .strictObject({
      embedded: z.strictObject({ dir: z.string().min(1).describe('the directory holding the lease files, e.g. /var/lib/meshgate/state') }).optional(),
      postgres: z
        .strictObject({
          url: secretRef,
          schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a PostgreSQL schema name: lower-case letters, digits and _, at most 63, not starting with a digit').default('meshgate'),
        })
        .optional(),
      /** This replica's name on the leases it writes; its own orphaned leases are revoked at start. */
      replicaId: z.string().min(1).max(128).optional(),
    })
    .refine((state) => !(state.embedded !== undefined && state.postgres !== undefined), 'embedded and postgres cannot be used together: choose one place for leases')
    .default({}),
  /**
   * The Firestore engine: a gRPC listener serving google.firestore.v1.Firestore, per
   * collection and operation authorization, forwarded with credentials callers never see.
   */
  firestore: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8443),
      /**
       * `mtls`: TLS with client certificates (SVIDs), meshgate's certificate (`tls`).
       * `plaintext`: h2c for a port only the local Istio sidecar reaches; callers are known by
       * the sidecar's x-forwarded-client-cert, believed only from `trustedHops`.
       */
      tls: z.enum(['mtls', 'plaintext']).default('mtls'),
      /** Addresses (or CIDRs) of the local sidecar, e.g. 127.0.0.6 (Istio's inbound source). */
      trustedHops: z.array(z.string().min(1)).default([]),
      /** The Google Cloud project callers may name; requests for any other are refused. */
      project: z.string().min(1).max(100).describe('the Google Cloud project callers may name, e.g. shop-prod'),
      upstream: z
        .union([
          /** The emulator, as FIRESTORE_EMULATOR_HOST names it (host:port); plaintext, owner token. */
          z.strictObject({ emulator: z.string().regex(/^[^:\s]+:\d{1,5}$/, 'HOST:PORT of the emulator, e.g. 127.0.0.1:8080') }),
          /** Google: short-lived tokens for the service account each policy rule names. */
          z.strictObject({ google: z.strictObject({ endpoint: z.string().url('an https URL, e.g. https://firestore.googleapis.com').default('https://firestore.googleapis.com') }) }),
          /**
           * Development: meshgate starts Google's Firestore emulator itself (the in-process one
           * where Java or the emulator is missing, said in the log) and stops it on exit; its
           * documents live as long as meshgate runs. Port 0: any free port.
           */
          z.strictObject({ launchEmulator: z.strictObject({ port: z.number().int().min(0).max(65535).default(0) }) }),
        ])
        .meta({
          expected: '{ emulator: HOST:PORT }, { google: { endpoint? } } or { launchEmulator: { port? } }',
          description: 'where Firestore calls go: { google: {} } for Google, { emulator: 127.0.0.1:8080 } or { launchEmulator: {} } in development',
        }),
      maxMessageBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(16 * 1024 * 1024),
      /**
       * `handshake`: from accept to the client's HTTP/2 preface (TLS included). `request`: from a
       * call's headers to its whole request (unary and server-streaming calls) or its first
       * message (Write, Listen). `idle`: a connection without calls this long is closed (GOAWAY).
       * `drain`: how long a call that writes waits for Firestore's answer after its caller left
       * (or at shutdown); past it the call is recorded as `unknown`.
       */
      timeouts: z
        .strictObject({ handshake: duration('10s'), request: duration('10s'), idle: duration('5m'), drain: duration('10s') })
        .default({ handshake: '10s', request: '10s', idle: '5m', drain: '10s' }),
    })
    .optional(),
  /** The admin HTTP API: `creds issue` for CI, lease listing and revocation. Absent: off. */
  admin: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(9440),
      /** SPIFFE IDs (client certificates) allowed to list and revoke leases and rotate the admin credential. */
      principals: z.array(z.string().startsWith('spiffe://', 'a SPIFFE ID (spiffe://trust-domain/path)')).default([]),
    })
    .optional(),
  /** A directory of policy files, or a git repository meshgate follows (policy-schema.ts, docs/policy-git.md). */
  policy: policySection(duration),
  /**
   * Token issuers for callers without a client certificate (CI jobs, people, Kubernetes
   * service-account tokens): the MySQL password carries the JWT, over TLS only.
   */
  tokens: tokenVerifierConfigSchema.optional(),
  /**
   * The SVID signing endpoint `meshgate agent` talks to (HTTPS, meshgate's certificate,
   * `tls`). Workloads prove themselves with a Kubernetes service-account token (an
   * issuer under `tokens` with the kubernetes mapping), a one-time join token, or their
   * current SVID. Absent: off.
   */
  signer: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(8443),
      caDir: z.string().min(1).describe('the directory of the CA that signs SVIDs (`meshgate ca init` creates it)'),
      svidTtlSeconds: z
        .number()
        .int()
        .min(60)
        .max(30 * 86_400)
        .default(4 * 3600),
      joinTokens: z.boolean().default(true),
      renewWithSvid: z.boolean().default(true),
      issuancesPerMinute: z.number().int().min(1).max(10_000).default(10),
    })
    .optional(),
  /** Where and how every operation is recorded (audit-schema.ts). */
  audit: auditSection(secretRef, duration, optionalDuration),
  /** OpenTelemetry spans over OTLP/HTTP (tracing-schema.ts). Absent: off. */
  tracing: tracingSection(secretRef, duration).optional(),
  /** Prometheus metrics, /healthz and /readyz (metrics-schema.ts). Absent: no metrics. */
  metrics: metricsSection(duration).optional(),
  /** Service classes and the upstream connection budget (throttle-schema.ts). Absent: everything is admitted. */
  throttle: throttleSection().optional(),
  /**
   * SIGTERM (a rolling upgrade, a scale-down): /readyz turns false and the listeners close at
   * once; open sessions and calls go on for `gracePeriod`, then end with MG_SHUTTING_DOWN
   * (each after the answer it waits for, within the listener's drain bound). Kubernetes'
   * terminationGracePeriodSeconds must cover gracePeriod + listener.timeouts.drain.
   */
  shutdown: z.strictObject({ gracePeriod: duration('20s') }).default({ gracePeriod: '20s' }),
});

export const configSchema = sections.check(
  // Which sections go together is judged even when fields have problems of their own, so an
  // empty file names every missing piece at once, engines included.
  z.superRefine((value, ctx) => {
    for (const problem of sectionProblems(value)) ctx.addIssue({ code: 'custom', ...problem });
  }, { when: () => true }),
);

interface SectionProblem {
  readonly path: PropertyKey[];
  readonly message: string;
  /** A required piece that is absent: a typo'd key that meant it says so already (describe.ts). */
  readonly params?: { readonly missing: true };
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Sections that only make sense together. The value may be anything a YAML file holds
 * (other checks report its shape), so nothing here assumes a field is well-formed.
 */
function sectionProblems(value: unknown): SectionProblem[] {
  if (!isMapping(value)) return [];
  const missing = (path: PropertyKey[], message: string): SectionProblem => ({ path, message, params: { missing: true } });
  const { listener, upstream, firestore, tls, signer } = value;
  const problems: SectionProblem[] = [];
  if (listener === undefined && upstream === undefined && firestore === undefined) {
    problems.push({ path: [], message: 'configure at least one engine: listener+upstream (MariaDB) or firestore' });
  } else if (listener !== undefined && upstream === undefined) {
    problems.push(missing(['upstream'], `required: ${UPSTREAM_TEXT}; the MySQL engine needs it with listener`));
  } else if (upstream !== undefined && listener === undefined) {
    problems.push(missing(['listener'], `required: ${LISTENER_TEXT}; the MySQL engine needs it with upstream`));
  }
  const listenerTls = isMapping(listener) && isMapping(listener['tls']) ? listener['tls'] : undefined;
  const inListener = (['cert', 'key'] as const).filter((key) => listenerTls?.[key] !== undefined);
  if (tls !== undefined) {
    if (inListener.length > 0) {
      const named = inListener.map((key) => `listener.tls.${key}`).join(' and ');
      problems.push({ path: ['listener', 'tls', inListener[0]!], message: `tls names meshgate's certificate for every port already: remove ${named} (one certificate, one place)` });
    }
    return problems;
  }
  if (isMapping(listener) && (listener['tls'] === undefined || listenerTls !== undefined)) {
    // The older place: both there, or the top-level tls instead.
    if (!inListener.includes('cert')) problems.push(missing(['listener', 'tls', 'cert'], `required: ${CERT_TEXT}; or name it once for every port: tls: { cert, key }`));
    if (!inListener.includes('key')) problems.push(missing(['listener', 'tls', 'key'], 'required: the PEM private key of listener.tls.cert, e.g. tls/server.key'));
    return problems;
  }
  if (listener !== undefined) return problems;
  // Without MySQL, a certificate is needed only where TLS is spoken.
  const mtls = isMapping(firestore) && (firestore['tls'] ?? 'mtls') === 'mtls';
  const needers = [...(mtls ? ['firestore.tls: mtls'] : []), ...(signer !== undefined ? ['the signer'] : [])];
  if (needers.length > 0) {
    const instead = signer === undefined ? " (or firestore.tls: plaintext, behind the pod's Istio sidecar)" : '';
    problems.push(missing(['tls'], `required: meshgate's server certificate for ${needers.join(' and ')}: { cert: tls/server.crt, key: tls/server.key }${instead}`));
  }
  return problems;
}

/** Every setting is checked above; this one needs two fields at once. */
export function credentialsMode(config: MeshgateConfig): 'dynamic' | 'static' {
  return config.upstream?.credentials !== undefined ? 'dynamic' : 'static';
}

export type MeshgateConfigInput = z.input<typeof configSchema>;
export type MeshgateConfig = z.output<typeof configSchema>;
/** The MySQL engine's sections, present together or not at all. */
export type ListenerConfig = NonNullable<MeshgateConfig['listener']>;
export type UpstreamConfig = NonNullable<MeshgateConfig['upstream']>;
export type SecretRef = z.output<typeof secretRef>;
export type TracingConfig = NonNullable<MeshgateConfig['tracing']>;
export type MetricsConfig = NonNullable<MeshgateConfig['metrics']>;
export type ThrottleConfig = NonNullable<MeshgateConfig['throttle']>;
export type PolicyGitConfig = NonNullable<MeshgateConfig['policy']['git']>;
