/**
 * The `audit` section: the hash-chained JSONL file every operation is recorded in, how
 * durably, how much of a statement it keeps, its signed checkpoints, rotation and the export
 * to PostgreSQL (docs/audit-durability.md, docs/audit-integrity.md).
 *
 * Built from schema.ts's own secret reference and durations, which it passes in (this file
 * cannot import them: schema.ts imports this one).
 */
import { z } from 'zod';

/** docs/audit-durability.md gives the measurements behind it. */
export const DEFAULT_AUDIT_DURABILITY = 'buffered';

export function auditSection<Secret extends z.ZodType, Duration extends z.ZodType<string>>(
  secretRef: Secret,
  duration: (fallback: string) => Duration,
  optionalDuration: () => z.ZodOptional<z.ZodString>,
) {
  return z
    .strictObject({
      file: z.string().min(1).default('audit.jsonl'),
      tagStatements: z.boolean().default(true),
      highWaterEvents: z.number().int().min(10).default(10_000),
      // docs/audit-durability.md: what each mode guarantees, and why this default.
      durability: z.enum(['strict', 'buffered']).default(DEFAULT_AUDIT_DURABILITY),
      maxWaitMs: z.number().int().min(10).max(600_000).default(5_000),
      /** The Ed25519 key (`meshgate audit keygen`) signing checkpoints; kept apart from the audit directory, mode 0600. */
      signingKey: z.string().min(1).describe('the private key from `meshgate audit keygen`, outside the audit directory, e.g. /etc/meshgate/audit-signing.key').optional(),
      /** A checkpoint (signed, and anchored) every `events` events or `interval`, whichever comes first. Default 1000, 10s. */
      checkpoint: z.strictObject({ events: z.number().int().min(1).optional(), interval: optionalDuration() }).optional(),
      /** The latest chain head in the state store (embedded, or PostgreSQL for replicas). Default: on when signingKey is set. */
      anchor: z.boolean().optional(),
      /** This log's name among the anchors; default `<state.replicaId or host name>:<audit file path>`. */
      anchorId: z.string().min(1).max(200).optional(),
      /** Rotation into audit.000001.jsonl, … when the file reaches maxBytes or maxAge (checked at each write). */
      rotate: z.strictObject({ maxBytes: z.number().int().min(4096).optional(), maxAge: optionalDuration() }).optional(),
      // How much of a statement's text its event keeps; the length, SHA-256 and verbs cover all of it.
      statementBytes: z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024)
        .default(64 * 1024),
      // How much of a prepared statement parameter's value its execute's event keeps, where a rule says auditParameters: values.
      parameterBytes: z.number().int().min(0).max(64 * 1024).default(256),
      /**
       * A copy of the log in PostgreSQL, one row per line, for several replicas to be read in
       * one place (README, "Several replicas"). The JSONL file stays the record; the export follows it.
       */
      export: z
        .strictObject({
          postgres: z.strictObject({
            url: secretRef,
            table: z
              .string()
              .regex(/^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/, 'a PostgreSQL table name, optionally schema.table: lower-case letters, digits and _, at most 63 each, not starting with a digit')
              .default('meshgate_audit_events'),
            // At most 3000: PostgreSQL takes 65535 parameters a statement, 19 a line.
            batch: z.number().int().min(1).max(3_000).default(500),
            interval: duration('1s'),
          }),
        })
        .optional(),
    })
    .default({ file: 'audit.jsonl', tagStatements: true, highWaterEvents: 10_000, durability: DEFAULT_AUDIT_DURABILITY, maxWaitMs: 5_000, statementBytes: 64 * 1024, parameterBytes: 256 });
}
