/**
 * What policy says inside an open session: a database it switches to (COM_INIT_DB, USE) must
 * be granted through the session's own role, and a reloaded policy may judge the session
 * again (`policy.openSessions: reevaluate`).
 */
import { mgError, type MeshgateError } from '../../errors/index.ts';
import { judge, type CompiledPolicy } from '../../policy/index.ts';
import type { SessionGrant } from './command-handler.ts';
import type { SessionEffects } from './sql/index.ts';

type Grant = Pick<SessionGrant, 'identity' | 'role' | 'audit'>;

/** Why the session may not switch to `database`, or null. */
export function databaseRefusal(policy: CompiledPolicy, grant: Grant, database: string): MeshgateError | null {
  const decision = policy.evaluate(grant.identity, { engine: 'mysql', database });
  if (!decision.allow) return mgError('MG_POLICY_DENIED', decision.reason);
  if (decision.role !== grant.role) {
    return mgError(
      'MG_POLICY_DENIED',
      `database '${database}' is granted through role ${decision.role} (rule ${decision.ruleId}), but this session runs as role ${grant.role}; open a new connection naming database '${database}'`,
    );
  }
  return null;
}

/** USE in SQL changes the database as COM_INIT_DB does: policy decides each one first. */
export function usesRefusal(policy: CompiledPolicy, grant: Grant, effects: SessionEffects): MeshgateError | null {
  if (effects.unreadableUse) {
    return mgError('MG_POLICY_DENIED', 'meshgate cannot read the database this USE statement names; write it as USE name (or USE `name`) outside executable comments');
  }
  for (const database of effects.possibleUses) {
    const refusal = databaseRefusal(policy, grant, database);
    if (refusal !== null) return refusal;
  }
  return null;
}

/**
 * The session judged by a reloaded policy in its current database: null when it is still
 * allowed as its role (its later events then name the new version and rule), else why not.
 */
export function redecideSession(policy: CompiledPolicy, grant: Grant, database: string | null): string | null {
  const { decision, marks } = judge(policy, grant.identity, { engine: 'mysql', database });
  if (!decision.allow) return decision.reason;
  if (decision.role !== grant.role) {
    return `policy version ${decision.policyVersion} grants role ${decision.role} (rule ${decision.ruleId}), not the session's role ${grant.role}; reconnect to get it`;
  }
  grant.audit.redecided(decision.ruleId, marks);
  return null;
}
