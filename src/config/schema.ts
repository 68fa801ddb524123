/**
 * The meshgate configuration file. One schema, unknown keys rejected, defaults here and
 * nowhere else. Secrets are never inline: an upstream password comes from an environment
 * variable or a file, so the YAML can live in version control.
 */
import { z } from 'zod';
import { tokenVerifierConfigSchema } from '../identity/jwt/config.ts';

const DURATION = /^\d{1,9}[smhd]$/;
const duration = (fallback: string) => z.string().regex(DURATION, 'a duration: a whole number and one unit, s, m, h or d (e.g. 90s, 15m, 4h)').default(fallback);

const secretRef = z.union([
  z.strictObject({ env: z.string().min(1).describe('name of the environment variable holding the secret') }),
  z.strictObject({ file: z.string().min(1).describe('path of a file holding the secret (one line)') }),
]);

const roleAccount = z.strictObject({
  user: z.string().min(1).max(80),
  password: secretRef,
});

export const configSchema = z.strictObject({
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
      cert: z.string().min(1),
      key: z.string().min(1),
    }),
    maxClientMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .default(64 * 1024 * 1024),
  }),
  trust: z.strictObject({
    bundles: z.array(z.string().min(1)).min(1),
    trustDomains: z.array(z.string().min(1)).min(1),
  }),
  upstream: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(3306),
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
    /** Static accounts, one per role, shared by every identity (the first engine's way). */
    roles: z.record(z.string().regex(/^[A-Za-z0-9_$]{1,64}$/, 'role names are MariaDB identifiers: letters, digits, _ and $'), roleAccount).default({}),
    /**
     * Dynamic credentials (recommended): meshgate creates a MariaDB account per identity and
     * role with a random password, grants it the role, and drops it when the lease ends.
     */
    credentials: z
      .strictObject({
        /** meshgate's administrative account: CREATE USER, SELECT on mysql.user, PROCESS, CONNECTION ADMIN, each role WITH ADMIN OPTION. */
        admin: z.strictObject({ user: z.string().min(1).max(80), password: secretRef }),
        /** Host part of the accounts meshgate creates; they must be able to log in from meshgate's address. */
        userHost: z.string().min(1).max(255).default('%'),
        /** Session leases: renewed while sessions use them, rotated before their max TTL. */
        sessionTtl: duration('1h'),
        sessionMaxTtl: duration('24h'),
        /** Leases handed out by `creds issue` for a direct connection (CI). */
        issuedTtl: duration('15m'),
        issuedMaxTtl: duration('1h'),
        /** Rotate the admin password this often (needs admin.password from a file); absent: only by `creds rotate-root`. */
        rotateAdminEvery: z.string().regex(DURATION).optional(),
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
  }),
  /**
   * Where leases live. Embedded (default): a directory, nothing to set up, one host.
   * PostgreSQL: several meshgate replicas share leases; any renews or revokes any.
   */
  state: z
    .strictObject({
      embedded: z.strictObject({ dir: z.string().min(1) }).optional(),
      postgres: z.strictObject({ url: secretRef, schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('meshgate') }).optional(),
      /** This replica's name on the leases it writes; its own orphaned leases are revoked at start. */
      replicaId: z.string().min(1).max(128).optional(),
    })
    .refine((state) => !(state.embedded !== undefined && state.postgres !== undefined), 'choose one of state.embedded or state.postgres')
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
       * `mtls`: TLS with client certificates (SVIDs), meshgate's listener certificate.
       * `plaintext`: h2c for a port only the local Istio sidecar reaches; callers are known by
       * the sidecar's x-forwarded-client-cert, believed only from `trustedHops`.
       */
      tls: z.enum(['mtls', 'plaintext']).default('mtls'),
      /** Addresses (or CIDRs) of the local sidecar, e.g. 127.0.0.6 (Istio's inbound source). */
      trustedHops: z.array(z.string().min(1)).default([]),
      /** The Google Cloud project callers may name; requests for any other are refused. */
      project: z.string().min(1).max(100),
      upstream: z.union([
        /** The emulator, as FIRESTORE_EMULATOR_HOST names it (host:port); plaintext, owner token. */
        z.strictObject({ emulator: z.string().regex(/^[^:\s]+:\d{1,5}$/, 'host:port') }),
        /** Google: short-lived tokens for the service account each policy rule names. */
        z.strictObject({ google: z.strictObject({ endpoint: z.string().url().default('https://firestore.googleapis.com') }) }),
        /**
         * Development: meshgate starts Google's Firestore emulator itself (the in-process one
         * where Java or the emulator is missing, said in the log) and stops it on exit; its
         * documents live as long as meshgate runs. Port 0: any free port.
         */
        z.strictObject({ launchEmulator: z.strictObject({ port: z.number().int().min(0).max(65535).default(0) }) }),
      ]),
      maxMessageBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(16 * 1024 * 1024),
    })
    .optional(),
  /** The admin HTTP API: `creds issue` for CI, lease listing and revocation. Absent: off. */
  admin: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(9440),
      /** SPIFFE IDs (client certificates) allowed to list and revoke leases and rotate the admin credential. */
      principals: z.array(z.string().startsWith('spiffe://')).default([]),
    })
    .optional(),
  policy: z.strictObject({
    dir: z.string().min(1),
  }),
  /**
   * Token issuers for callers without a client certificate (CI jobs, people, Kubernetes
   * service-account tokens): the MySQL password carries the JWT, over TLS only.
   */
  tokens: tokenVerifierConfigSchema.optional(),
  /**
   * The SVID signing endpoint `meshgate agent` talks to (HTTPS, meshgate's listener
   * certificate). Workloads prove themselves with a Kubernetes service-account token (an
   * issuer under `tokens` with the kubernetes mapping), a one-time join token, or their
   * current SVID. Absent: off.
   */
  signer: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(8443),
      caDir: z.string().min(1),
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
  audit: z
    .strictObject({
      file: z.string().min(1).default('audit.jsonl'),
      tagStatements: z.boolean().default(true),
      highWaterEvents: z.number().int().min(10).default(10_000),
    })
    .default({ file: 'audit.jsonl', tagStatements: true, highWaterEvents: 10_000 }),
});

/** Every setting is checked above; this one needs two fields at once. */
export function credentialsMode(config: MeshgateConfig): 'dynamic' | 'static' {
  return config.upstream.credentials !== undefined ? 'dynamic' : 'static';
}

export type MeshgateConfigInput = z.input<typeof configSchema>;
export type MeshgateConfig = z.output<typeof configSchema>;
export type SecretRef = z.output<typeof secretRef>;
