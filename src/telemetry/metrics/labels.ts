/**
 * What an event's facts become as label values. Every label has a bounded set of values,
 * whatever a client sends: a verb or method meshgate does not know is `other`, an error
 * code not in the registry is `other`, and nothing that names a caller, a statement, a lease
 * or a trace is ever a label (DESIGN.md invariant 2; Prometheus keeps a series per value).
 */
import type { ConnectionEvent, RpcEvent, SessionEndEvent, StatementEvent } from '../../audit/index.ts';
import { METHODS } from '../../engines/firestore/codec/access.ts';
import { ERROR_CODES } from '../../errors/index.ts';

export const OTHER = 'other';
/** A rule label when no rule decided (a deny by default, a refusal before policy). */
export const NO_RULE = 'none';

/** SQL verbs a statement label keeps; the first keyword of anything else is `other`. */
const VERBS: ReadonlySet<string> = new Set([
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'WITH', 'VALUES', 'TABLE', 'CALL', 'DO', 'LOAD', 'HANDLER',
  'CREATE', 'ALTER', 'DROP', 'TRUNCATE', 'RENAME', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'ANALYZE', 'OPTIMIZE', 'CHECK', 'REPAIR', 'CHECKSUM',
  'SET', 'USE', 'BEGIN', 'START', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'XA', 'LOCK', 'UNLOCK',
  'PREPARE', 'EXECUTE', 'DEALLOCATE', 'GRANT', 'REVOKE', 'FLUSH', 'KILL', 'HELP', 'BINLOG', 'PURGE', 'RESET', 'INSTALL', 'UNINSTALL', 'SHUTDOWN',
]);

/** Protocol commands are meshgate's own names (codec/commands.ts); anything unexpected is `other`. */
const COMMAND = /^[a-z_]{1,32}$/;

/** A statement's verb: its SQL keyword, or for commands without SQL (ping, fetch, init_db) the command. */
export function verbLabel(verb: string | null, command: string): string {
  if (verb !== null) return VERBS.has(verb) ? verb : OTHER;
  return COMMAND.test(command) ? command : OTHER;
}

/** `google.firestore.v1.Firestore/GetDocument` → `GetDocument`; a method meshgate does not serve → `other`. */
export function methodLabel(method: string): string {
  return METHODS.get(method.startsWith('/') ? method.slice(1) : method)?.name ?? OTHER;
}

/** A stable MG_ code from the registry; MariaDB's numeric codes and anything else → `other`. */
export function codeLabel(code: string | number | undefined): string {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) ? code : OTHER;
}

export function ruleLabel(rule: string | null): string {
  return rule ?? NO_RULE;
}

/** A login: `success`, `denied` by policy, or `failed` (identity, TLS, upstream, audit, limits). */
export function loginOutcome(event: ConnectionEvent): 'success' | 'denied' | 'failed' {
  if (event.decision === 'allow') return 'success';
  return event.error?.code === 'MG_POLICY_DENIED' ? 'denied' : 'failed';
}

/** Whether policy judged this login (it had an identity): then it counts as a policy decision. */
export function policyJudged(event: ConnectionEvent): boolean {
  return event.identity !== null && (event.decision === 'allow' || event.rule !== null || event.error?.code === 'MG_POLICY_DENIED');
}

/** A statement or call: refused by policy (or meshgate), or the audit's outcome. */
export function operationOutcome(event: StatementEvent | RpcEvent): 'denied' | 'completed' | 'failed' | 'unknown' {
  return event.decision === 'deny' ? 'denied' : event.outcome;
}

/** How a session ended, from its reason (free text, never a label itself). */
export function sessionOutcome(event: SessionEndEvent): 'client_closed' | 'shutdown' | 'error' {
  const reason = event.reason;
  if (reason.startsWith('client quit') || reason.startsWith('client closed') || reason.startsWith('client left')) return 'client_closed';
  if (reason.includes('shut down')) return 'shutdown';
  return 'error';
}
