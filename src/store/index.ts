/** The state stores: embedded (one host, a file) and PostgreSQL (several replicas). */
export type { LeaseFilter, LeasePatch, LeasePurpose, LeaseRecord, LeaseState, StateStore } from './types.ts';
export { openEmbeddedStore, LEASES_FILE, LEASES_LOCK_FILE, type EmbeddedStoreOptions } from './embedded.ts';
export { openPostgresStore, type PostgresStoreOptions } from './postgres.ts';
export type { AuditAnchor, AuditAnchorInput, AuditAnchorStore } from './anchors.ts';
export { openEmbeddedAnchorStore, AUDIT_ANCHORS_FILE } from './anchors-embedded.ts';
export { openPostgresAnchorStore, type PostgresAnchorStoreOptions } from './anchors-postgres.ts';
export { createTablesOnce, openPgPool, postgresTarget, type PgPoolOptions, type Target as PostgresTarget } from './postgres-pool.ts';
export { storeError } from './postgres.ts';
