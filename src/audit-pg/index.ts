/**
 * The audit in PostgreSQL, for several replicas: the export that follows each replica's
 * JSONL log into one table, and what `meshgate audit verify --postgres` and `audit query
 * --postgres` read back. Apart from src/audit (as audit-seal.ts is) so that src/audit stays
 * loadable without database drivers.
 */
export { startAuditExport, type AuditExport, type AuditExportOptions, type AuditExportStatus } from './export.ts';
export { auditTable, DEFAULT_AUDIT_TABLE, type AuditTable } from './table.ts';
export { verifyPostgresAudit, type PgFinding, type PgVerification, type ReplicaChain, type VerifyPostgresOptions } from './verify.ts';
export { openPostgresEventSource, type PostgresEventSource, type PostgresSourceOptions } from './source.ts';
