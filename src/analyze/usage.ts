/**
 * What the audit shows was used: events folded one at a time into counts per rule, per
 * identity and role, per identity and Firestore rule, tables per role and refusals per
 * caller. Events are taken as the log holds them (any JSON object: a log can be edited), so
 * every field is type-checked and an event without what a count needs is passed over.
 * Memory grows with identities, rules and tables, not with the log.
 */
import { tablesOf } from './tables.ts';

type Event = Readonly<Record<string, unknown>>;

/** One identity's use of one MariaDB grant (rule and role). */
export interface MysqlUse {
  readonly identity: string;
  readonly rule: string;
  readonly role: string;
  sessions: number;
  statements: number;
  /** Statements by verb (every verb of a multi-statement text). */
  readonly verbs: Map<string, number>;
  /** Direct credentials issued under this rule: their statements never pass meshgate. */
  direct: number;
}

/** One identity's calls under one Firestore rule. */
export interface FirestoreUse {
  readonly identity: string;
  readonly rule: string;
  readonly operations: Map<string, number>;
  readonly methods: Map<string, number>;
}

/** One caller's refusals. */
export interface Refusals {
  readonly identity: string;
  count: number;
  first: string | null;
  last: string | null;
  /** `rule\u0000reason` → count. */
  readonly causes: Map<string, number>;
}

/** Paths kept per Firestore rule to match collection patterns against; more are counted only. */
const MAX_PATHS_PER_RULE = 10_000;

export class AuditUsage {
  events = 0;
  first: string | null = null;
  last: string | null = null;
  /** Events that decided by each rule (allow or deny, any type); a dry-run rule by what it would have decided. */
  readonly ruleHits = new Map<string, number>();
  /** Policy versions that decided events in the window, with how many each. */
  readonly policyVersions = new Map<string, number>();
  readonly mysql = new Map<string, MysqlUse>();
  readonly firestore = new Map<string, FirestoreUse>();
  readonly refusals = new Map<string, Refusals>();
  /** Role → `db.table` names its sessions' statements named (`?.table` where no database was known). */
  readonly tablesByRole = new Map<string, Set<string>>();
  /** Firestore rule → distinct recorded paths its allowed calls touched. */
  readonly pathsByRule = new Map<string, Set<string>>();
  /** Statements whose text was cut in the audit (their tables may be missed). */
  truncatedStatements = 0;

  add(event: Event): void {
    const type = event['type'];
    if (type === 'intent' || type === 'recovered' || type === 'session_end' || type === 'policy') return;
    this.events += 1;
    const time = str(event['time']);
    if (time !== null) {
      if (this.first === null || time < this.first) this.first = time;
      if (this.last === null || time > this.last) this.last = time;
    }
    const rule = str(event['rule']);
    if (rule !== null) this.ruleHits.set(rule, (this.ruleHits.get(rule) ?? 0) + 1);
    const dryRun = event['dryRun'] as { rule?: unknown } | null | undefined;
    const dryRule = str(dryRun?.rule);
    if (dryRule !== null) this.ruleHits.set(dryRule, (this.ruleHits.get(dryRule) ?? 0) + 1);
    const version = str(event['policyVersion']);
    if (version !== null) this.policyVersions.set(version, (this.policyVersions.get(version) ?? 0) + 1);
    if (event['decision'] === 'deny') {
      this.refused(event, rule, time);
      return;
    }
    if (event['decision'] !== 'allow') return;
    const identity = identityOf(event);
    if (identity === null || rule === null) return;
    if (type === 'connection' && event['engine'] === 'mysql') {
      const role = str(event['upstreamRole']);
      if (role !== null) this.mysqlUse(identity, rule, role).sessions += 1;
    } else if (type === 'statement') {
      this.statement(event, identity, rule);
    } else if (type === 'credential' && event['action'] === 'issue' && event['outcome'] === 'completed') {
      const role = str(event['role']);
      if (role !== null) this.mysqlUse(str(event['principal']) ?? identity, rule, role).direct += 1;
    } else if (type === 'rpc') {
      this.rpc(event, identity, rule);
    }
  }

  private mysqlUse(identity: string, rule: string, role: string): MysqlUse {
    const key = `${identity}\u0000${rule}\u0000${role}`;
    let use = this.mysql.get(key);
    if (use === undefined) this.mysql.set(key, (use = { identity, rule, role, sessions: 0, statements: 0, verbs: new Map(), direct: 0 }));
    return use;
  }

  private statement(event: Event, identity: string, rule: string): void {
    const role = str(event['upstreamRole']);
    if (role === null) return;
    const use = this.mysqlUse(identity, rule, role);
    use.statements += 1;
    const listed = Array.isArray(event['verbs']) ? (event['verbs'] as unknown[]) : typeof event['verb'] === 'string' ? [event['verb']] : [];
    for (const verb of listed) {
      // null: a statement whose verb meshgate could not tell; counted, so it is not taken for no write.
      const name = typeof verb === 'string' ? verb.toUpperCase() : '(unknown)';
      use.verbs.set(name, (use.verbs.get(name) ?? 0) + 1);
    }
    const text = str(event['statement']);
    if (text === null) return;
    if (event['truncated'] === true) this.truncatedStatements += 1;
    const database = str(event['database']);
    let tables = this.tablesByRole.get(role);
    if (tables === undefined) this.tablesByRole.set(role, (tables = new Set()));
    for (const ref of tablesOf(text)) tables.add(`${ref.database ?? database ?? '?'}.${ref.table}`);
  }

  private rpc(event: Event, identity: string, rule: string): void {
    const key = `${identity}\u0000${rule}`;
    let use = this.firestore.get(key);
    if (use === undefined) this.firestore.set(key, (use = { identity, rule, operations: new Map(), methods: new Map() }));
    const operation = str(event['operation']);
    if (operation !== null) use.operations.set(operation, (use.operations.get(operation) ?? 0) + 1);
    const method = str(event['method']);
    if (method !== null) use.methods.set(method, (use.methods.get(method) ?? 0) + 1);
    const paths = Array.isArray(event['paths']) ? (event['paths'] as unknown[]) : [];
    let seen = this.pathsByRule.get(rule);
    if (seen === undefined) this.pathsByRule.set(rule, (seen = new Set()));
    for (const path of paths) if (typeof path === 'string' && seen.size < MAX_PATHS_PER_RULE) seen.add(path);
  }

  private refused(event: Event, rule: string | null, time: string | null): void {
    // A refusal of an unidentified caller is told apart by where it came from.
    const peer = event['peer'] as { address?: unknown } | null | undefined;
    const who = identityOf(event) ?? (typeof peer?.address === 'string' ? `(unidentified) ${peer.address}` : '(unidentified)');
    let refusals = this.refusals.get(who);
    if (refusals === undefined) this.refusals.set(who, (refusals = { identity: who, count: 0, first: null, last: null, causes: new Map() }));
    // A summary line stands for `repeats.count` more refusals like it (audit/refusals.ts).
    const repeats = event['repeats'] as { count?: unknown; since?: unknown } | undefined;
    const count = 1 + (typeof repeats?.count === 'number' && repeats.count > 0 ? repeats.count : 0);
    refusals.count += count;
    const since = str(repeats?.since) ?? time;
    if (since !== null && (refusals.first === null || since < refusals.first)) refusals.first = since;
    if (time !== null && (refusals.last === null || time > refusals.last)) refusals.last = time;
    const error = event['error'] as { code?: unknown; message?: unknown } | null | undefined;
    const fromError = str(error?.message) === null ? null : `${typeof error?.code === 'string' ? `${error.code}: ` : ''}${String(error?.message)}`;
    const reason = str(event['reason']) ?? fromError ?? '(no reason recorded)';
    const cause = `${rule ?? '(no rule: default deny or a refusal before policy)'}\u0000${reason}`;
    refusals.causes.set(cause, (refusals.causes.get(cause) ?? 0) + count);
  }
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The Istio principal, or the SPIFFE ID when there is none. */
function identityOf(event: Event): string | null {
  const identity = event['identity'] as Record<string, unknown> | null | undefined;
  if (typeof identity !== 'object' || identity === null) return null;
  return str(identity['principal']) ?? str(identity['spiffeId']);
}
