/** The refusals of a statement's text that tell the client what to do instead. */
import { mgError, type MeshgateError } from '../../errors/index.ts';
import type { AccountChange } from './sql/index.ts';

/** MG_ACCOUNT_CHANGE_REFUSED, saying what was found and what to do instead. */
export function accountRefusal(change: AccountChange): MeshgateError {
  const found =
    change.statement === 'UNREADABLE'
      ? 'meshgate cannot tell whether this text changes a MariaDB account (literals nested too deep to read, or a versioned comment whose running it cannot judge); write it plainly'
      : `this text would run ${change.statement}${change.inLiteral ? ' (spelled in a string or hex literal, which PREPARE or EXECUTE IMMEDIATE runs)' : ''}, which changes a MariaDB account or its privileges`;
  const data = change.inLiteral ? '; text that is data belongs in a prepared statement parameter' : '';
  return mgError('MG_ACCOUNT_CHANGE_REFUSED', `${found}; accounts and privileges are managed by meshgate and its operator, not through meshgate: ask the operator for the access you need${data}`);
}
