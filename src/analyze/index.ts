/**
 * `meshgate analyze`: least privilege from the audit. Events are folded into what was used
 * (usage.ts), held against the policy as written and the roles' grants (findings.ts), and
 * shown as tables (report.ts) or, with --suggest, as a diff of the policy files (patch.ts)
 * that is printed, never applied. Only mariadb-grants.ts does I/O (it asks MariaDB).
 */
import type { InventoryRule } from '../policy/index.ts';
import { findings, type AnalyzeOptions, type Findings } from './findings.ts';
import type { GrantsView } from './grants.ts';
import { AuditUsage } from './usage.ts';

export { AuditUsage, type FirestoreUse, type MysqlUse, type Refusals } from './usage.ts';
export { DEFAULT_MIN_DENIALS, findings, type AnalyzeOptions, type Findings, type FirestoreReadOnly, type RepeatedDenial, type UnusedRule, type UnusedWrite, type UntouchedCollections, type UntouchedTables } from './findings.ts';
export { databaseMatches, heuristicGrants, parseShowGrants, roleReadsOnly, roleTables, roleWrites, WRITE_PRIVILEGES, WRITE_VERBS, type GrantsView, type PrivilegeGrant, type RoleGrants } from './grants.ts';
export { readMariadbGrants } from './mariadb-grants.ts';
export { renderPatch, suggestEdits, type PolicyEdit } from './patch.ts';
export { renderReport } from './report.ts';
export { tablesOf, type TableRef } from './tables.ts';

/** The findings of events already read (tests, small logs); the CLI streams into an AuditUsage instead. */
export function analyzeEvents(events: Iterable<object>, rules: readonly InventoryRule[], grants: GrantsView, options: AnalyzeOptions = {}): { findings: Findings; usage: AuditUsage } {
  const usage = new AuditUsage();
  for (const event of events) usage.add(event as Readonly<Record<string, unknown>>);
  return { findings: findings(rules, usage, grants, options), usage };
}
