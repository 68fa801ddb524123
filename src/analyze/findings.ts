/**
 * Least-privilege findings: the policy as written (its inventory) and the roles' grants,
 * held against what the audit shows was used. Pure: every input is given.
 */
import { compilePathPattern, pathMatches, type InventoryRule } from '../policy/index.ts';
import { splitRecordedPath } from '../audit/index.ts';
import { roleDatabases, roleReadsOnly, roleSelectsAll, roleTables, roleWrites, WRITE_VERBS, type GrantsView } from './grants.ts';
import type { AuditUsage } from './usage.ts';

export interface UnusedRule {
  readonly rule: string;
  readonly action: string;
  /** A dry run (action AUDIT): it was never even matched in dry run. */
  readonly dryRun: boolean;
  readonly file: string;
  readonly line: number | null;
  readonly from: string;
}

export interface UnusedWrite {
  readonly identity: string;
  readonly rule: string;
  readonly role: string;
  readonly sessions: number;
  readonly statements: number;
  /** Verbs it ran, most frequent first. */
  readonly verbs: readonly { readonly verb: string; readonly count: number }[];
  /** A role of the policy granting only SELECT on the same databases, or null. */
  readonly readOnlyRole: string | null;
}

export interface UntouchedTables {
  readonly role: string;
  /** How many of the tables the role may touch its sessions named. */
  readonly touched: number;
  readonly reachable: number;
  /** `db.table`, sorted. */
  readonly untouched: readonly string[];
}

export interface UntouchedCollections {
  readonly rule: string;
  readonly pattern: string;
}

export interface RepeatedDenial {
  readonly identity: string;
  readonly count: number;
  readonly first: string | null;
  readonly last: string | null;
  /** Most frequent first. */
  readonly causes: readonly { readonly rule: string; readonly reason: string; readonly count: number }[];
}

export interface FirestoreReadOnly {
  readonly identity: string;
  readonly rule: string;
  /** What the rule grants (read, write, admin). */
  readonly granted: readonly string[];
  /** What the identity did, by operation class. */
  readonly operations: readonly { readonly operation: string; readonly count: number }[];
}

export interface Findings {
  readonly window: { readonly first: string | null; readonly last: string | null; readonly events: number };
  /** Policy versions that decided the window's events, most events first (events from before versions were recorded carry none). */
  readonly policyVersions: readonly { readonly version: string; readonly events: number }[];
  readonly grantsSource: GrantsView['source'];
  readonly unusedRules: readonly UnusedRule[];
  readonly unusedWrites: readonly UnusedWrite[];
  readonly untouchedTables: readonly UntouchedTables[];
  readonly untouchedCollections: readonly UntouchedCollections[];
  readonly repeatedDenials: readonly RepeatedDenial[];
  readonly firestoreReadOnly: readonly FirestoreReadOnly[];
  /** What the reader should know about how far to trust the above. */
  readonly notes: readonly string[];
}

export interface AnalyzeOptions {
  /** Refusals from one caller at or above which it is reported (default 5). */
  readonly minDenials?: number;
  /** The version of the policy analyzed (LoadedPolicy.version), to tell whether the audit was decided by another. */
  readonly policyVersion?: string;
}

export const DEFAULT_MIN_DENIALS = 5;

export function findings(rules: readonly InventoryRule[], usage: AuditUsage, grants: GrantsView, options: AnalyzeOptions = {}): Findings {
  const notes: string[] = [];
  if (grants.source === 'heuristic') {
    notes.push(
      'MariaDB was not asked (no --mariadb): a role is taken to write unless its name says it reads (ro, read, readonly, reader, select, viewer, report, analytics as a word of the name); tables a role may touch are not listed',
    );
  }
  for (const role of grants.missing) notes.push(`role ${role} is named by the policy but MariaDB does not know it: sessions in it fail at login`);
  if (usage.truncatedStatements > 0) notes.push(`${usage.truncatedStatements} statements were cut in the audit (audit.statementBytes): tables named past the cut are not seen`);
  if (usage.events === 0) notes.push('the audit holds no events: every rule reads as unused');
  const policyVersions = [...usage.policyVersions].map(([version, events]) => ({ version, events })).sort((a, b) => b.events - a.events || a.version.localeCompare(b.version));
  const others = policyVersions.filter((v) => v.version !== options.policyVersion);
  if (options.policyVersion !== undefined && others.length > 0) {
    notes.push(
      `${others.reduce((n, v) => n + v.events, 0)} events were decided by other policy versions than the one analyzed (${options.policyVersion}): ${others.map((v) => v.version).join(', ')}; a rule added or changed since has had less of the window to be used`,
    );
  }
  return {
    window: { first: usage.first, last: usage.last, events: usage.events },
    policyVersions,
    grantsSource: grants.source,
    unusedRules: unusedRules(rules, usage),
    unusedWrites: unusedWrites(rules, usage, grants),
    untouchedTables: untouchedTables(rules, usage, grants, notes),
    untouchedCollections: untouchedCollections(rules, usage),
    repeatedDenials: repeatedDenials(usage, options.minDenials ?? DEFAULT_MIN_DENIALS),
    firestoreReadOnly: firestoreReadOnly(rules, usage),
    notes,
  };
}

/** An ALLOW rule that is enforced: a dry run grants nothing. */
function grantsAccess(rule: InventoryRule): boolean {
  return rule.action === 'ALLOW' && !rule.dryRun;
}

function unusedRules(rules: readonly InventoryRule[], usage: AuditUsage): UnusedRule[] {
  return rules.filter((rule) => !usage.ruleHits.has(rule.id)).map((rule) => ({ rule: rule.id, action: rule.action, dryRun: rule.dryRun, file: rule.file, line: rule.line, from: rule.from }));
}

function unusedWrites(rules: readonly InventoryRule[], usage: AuditUsage, grants: GrantsView): UnusedWrite[] {
  const out: UnusedWrite[] = [];
  for (const use of usage.mysql.values()) {
    // Direct credentials' statements never reach the audit: no telling whether they wrote.
    if (use.direct > 0 || roleWrites(grants, use.role) !== true) continue;
    const wrote = [...use.verbs.keys()].some((verb) => WRITE_VERBS.has(verb) || verb === '(unknown)');
    if (wrote) continue;
    const verbs = [...use.verbs].map(([verb, count]) => ({ verb, count })).sort((a, b) => b.count - a.count || a.verb.localeCompare(b.verb));
    out.push({ identity: use.identity, rule: use.rule, role: use.role, sessions: use.sessions, statements: use.statements, verbs, readOnlyRole: readOnlyRoleFor(rules, grants, use.role, use.rule) });
  }
  return out.sort((a, b) => a.identity.localeCompare(b.identity) || a.rule.localeCompare(b.rule));
}

/**
 * A role some ALLOW rule of the policy names that only reads and reads every database the
 * writing role reaches. With grants read from MariaDB that is SELECT on each of them; by
 * names alone, a read-only-looking role in a rule over the same `databases` as the rule
 * that granted the writing role.
 */
function readOnlyRoleFor(rules: readonly InventoryRule[], grants: GrantsView, writing: string, ruleId: string): string | null {
  const candidates = [...new Set(rules.filter(grantsAccess).flatMap((r) => r.mariadb.map((t) => t.role)).filter((role): role is string => role !== null && role !== writing))].sort();
  if (grants.source === 'mariadb') {
    const databases = roleDatabases(grants, writing);
    if (databases === null || databases.size === 0) return null;
    return candidates.find((role) => roleReadsOnly(grants, role) && [...databases].every((db) => roleSelectsAll(grants, role, db))) ?? null;
  }
  const granting = rules.find((r) => r.id === ruleId)?.mariadb.find((t) => t.role === writing);
  if (granting === undefined) return null;
  const wanted = new Set(granting.databases ?? ['*']);
  return (
    candidates.find((role) =>
      roleReadsOnly(grants, role) &&
      rules.some((r) => grantsAccess(r) && r.mariadb.some((t) => t.role === role && [...wanted].every((db) => (t.databases ?? ['*']).includes(db)))),
    ) ?? null
  );
}

function untouchedTables(rules: readonly InventoryRule[], usage: AuditUsage, grants: GrantsView, notes: string[]): UntouchedTables[] {
  if (grants.source !== 'mariadb') return [];
  const roles = [...new Set(rules.filter(grantsAccess).flatMap((r) => r.mariadb.map((t) => t.role)).filter((role): role is string => role !== null))].sort();
  const out: UntouchedTables[] = [];
  for (const role of roles) {
    if (!grants.roles.has(role)) continue;
    const reachable = roleTables(grants, role);
    if (reachable === null) {
      notes.push(`role ${role} holds global privileges (ON *.*): it may touch every table on the server; not listed`);
      continue;
    }
    const named = new Set([...(usage.tablesByRole.get(role) ?? [])].map((t) => t.toLowerCase()));
    // `?.t`: a table named while no database was selected; it matches t in any database.
    const bare = new Set([...named].filter((t) => t.startsWith('?.')).map((t) => t.slice(2)));
    const isTouched = (table: string) => named.has(table.toLowerCase()) || bare.has(table.slice(table.indexOf('.') + 1).toLowerCase());
    const untouched = [...reachable].filter((t) => !isTouched(t)).sort();
    if (untouched.length > 0) out.push({ role, touched: reachable.size - untouched.length, reachable: reachable.size, untouched });
  }
  if (out.length > 0) notes.push('tables are read from statement texts (FROM, JOIN, INTO, UPDATE, TABLE …): approximate; those reached only through views, routines (CALL) or triggers count as untouched');
  return out;
}

function untouchedCollections(rules: readonly InventoryRule[], usage: AuditUsage): UntouchedCollections[] {
  const out: UntouchedCollections[] = [];
  for (const rule of rules) {
    if (!grantsAccess(rule) || !usage.ruleHits.has(rule.id)) continue;
    const paths = [...(usage.pathsByRule.get(rule.id) ?? [])].map(splitRecordedPath);
    for (const target of rule.firestore) {
      for (const pattern of target.collections) {
        const compiled = [compilePathPattern(pattern)];
        if (!paths.some(({ path, kind }) => pathMatches(compiled, path, kind, 'some'))) out.push({ rule: rule.id, pattern });
      }
    }
  }
  return out;
}

function repeatedDenials(usage: AuditUsage, min: number): RepeatedDenial[] {
  return [...usage.refusals.values()]
    .filter((r) => r.count >= min)
    .map((r) => ({
      identity: r.identity,
      count: r.count,
      first: r.first,
      last: r.last,
      causes: [...r.causes]
        .map(([key, count]) => {
          const [rule, reason] = key.split('\u0000') as [string, string];
          return { rule, reason, count };
        })
        .sort((a, b) => b.count - a.count),
    }))
    .sort((a, b) => b.count - a.count || a.identity.localeCompare(b.identity));
}

function firestoreReadOnly(rules: readonly InventoryRule[], usage: AuditUsage): FirestoreReadOnly[] {
  const out: FirestoreReadOnly[] = [];
  for (const use of usage.firestore.values()) {
    const rule = rules.find((r) => r.id === use.rule);
    if (rule === undefined || !grantsAccess(rule)) continue;
    const granted = [...new Set(rule.firestore.flatMap((t) => t.operations ?? []))].sort();
    if (!granted.includes('write') || use.operations.has('write')) continue;
    const operations = [...use.operations].map(([operation, count]) => ({ operation, count })).sort((a, b) => b.count - a.count);
    out.push({ identity: use.identity, rule: use.rule, granted, operations });
  }
  return out.sort((a, b) => a.identity.localeCompare(b.identity) || a.rule.localeCompare(b.rule));
}
