/**
 * The meshgate configuration file. One schema, unknown keys rejected, defaults here and
 * nowhere else. Secrets are never inline: an upstream password comes from an environment
 * variable or a file, so the YAML can live in version control.
 */
import { z } from 'zod';
import { tokenVerifierConfigSchema } from '../identity/jwt/config.ts';

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
    roles: z.record(z.string().regex(/^[A-Za-z0-9_$]{1,64}$/, 'role names are MariaDB identifiers: letters, digits, _ and $'), roleAccount),
  }),
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

export type MeshgateConfigInput = z.input<typeof configSchema>;
export type MeshgateConfig = z.output<typeof configSchema>;
export type SecretRef = z.output<typeof secretRef>;
