/**
 * The audit seal as the config asks for it: the signing key, the anchor in the state store
 * the config names (the same one leases use), the checkpoint cadence and rotation. `serve`
 * opens it around the JSONL sink; `audit verify --config` reads the same anchor back. Here,
 * beside server.ts, because it joins config, audit and store: src/audit stays loadable
 * without database drivers (`meshgate --help` reads its event types).
 */
import { hostname } from 'node:os';
import { DEFAULT_CHECKPOINT_EVERY, loadSigningKey, openAuditSeal, type AuditSeal } from './audit/index.ts';
import { startAuditExport, type AuditExport } from './audit-pg/index.ts';
import { readSecret } from './config/load.ts';
import type { MeshgateConfig } from './config/schema.ts';
import { parseDuration } from './identity/index.ts';
import type { Logger } from './log.ts';
import { openEmbeddedAnchorStore, openPostgresAnchorStore, type AuditAnchorStore } from './store/index.ts';

type AuditConfig = MeshgateConfig['audit'];

/** This log's name among the anchors of a shared store. */
export function anchorIdOf(config: Pick<MeshgateConfig, 'audit' | 'state'>): string {
  return config.audit.anchorId ?? `${config.state.replicaId ?? hostname()}:${config.audit.file}`;
}

export function anchoringOn(audit: AuditConfig): boolean {
  return audit.anchor ?? audit.signingKey !== undefined;
}

export function openAnchorStoreFor(config: Pick<MeshgateConfig, 'state'>, env: NodeJS.ProcessEnv = process.env): Promise<AuditAnchorStore> {
  const postgres = config.state.postgres;
  if (postgres !== undefined) return openPostgresAnchorStore({ connectionString: readSecret(postgres.url, 'state.postgres.url', env), schema: postgres.schema });
  if (config.state.embedded === undefined) throw new TypeError('loadConfig always sets state.embedded when there is no state.postgres');
  return openEmbeddedAnchorStore(config.state.embedded.dir);
}

export interface SealReporter {
  error(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
}

/** null when the config asks for none of signing, anchoring and rotation: the bare chain, as before. */
export async function openSealFor(config: MeshgateConfig, log: SealReporter, env: NodeJS.ProcessEnv = process.env): Promise<AuditSeal | null> {
  const audit = config.audit;
  const anchored = anchoringOn(audit);
  if (audit.signingKey === undefined && !anchored && audit.rotate === undefined) return null;
  const signer = audit.signingKey === undefined ? undefined : await loadSigningKey(audit.signingKey, { auditFile: audit.file });
  const store = anchored ? await openAnchorStoreFor(config, env) : undefined;
  try {
    const maxAge = audit.rotate?.maxAge;
    const interval = audit.checkpoint?.interval;
    return await openAuditSeal({
      file: audit.file,
      ...(signer === undefined ? {} : { signer }),
      ...(store === undefined ? {} : { anchors: { store, id: anchorIdOf(config), ownsStore: true } }),
      checkpointEvery: {
        events: audit.checkpoint?.events ?? DEFAULT_CHECKPOINT_EVERY.events,
        intervalMs: interval === undefined ? DEFAULT_CHECKPOINT_EVERY.intervalMs : parseDuration(interval) * 1000,
      },
      ...(audit.rotate === undefined ? {} : { rotate: { ...(audit.rotate.maxBytes === undefined ? {} : { maxBytes: audit.rotate.maxBytes }), ...(maxAge === undefined ? {} : { maxAgeMs: parseDuration(maxAge) * 1000 }) } }),
      onError: (error) => log.error('audit checkpoint, anchor or rotation failed; events are still written', { file: audit.file, error: error.message }),
      onWarning: (message) => log.warn('audit log', { file: audit.file, message }),
    });
  } catch (error) {
    await store?.close().catch(() => undefined);
    throw error;
  }
}

/** The audit export to PostgreSQL when audit.export.postgres is set; null otherwise. */
export function startAuditExportFor(config: MeshgateConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): AuditExport | null {
  const postgres = config.audit.export?.postgres;
  if (postgres === undefined) return null;
  return startAuditExport({
    connectionString: readSecret(postgres.url, 'audit.export.postgres.url', env),
    table: postgres.table,
    replica: config.state.replicaId ?? hostname(),
    auditFile: config.audit.file,
    batch: postgres.batch,
    intervalMs: parseDuration(postgres.interval) * 1000,
    log,
  });
}
