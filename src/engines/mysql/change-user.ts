/**
 * COM_CHANGE_USER through meshgate. Connection pools send it to hand a connection to its next
 * user (PHP's persistent connections, to the same user), and what they want from it is the
 * reset that comes with it: session variables back to the globals, user variables, temporary
 * tables and prepared statements gone, any transaction rolled back. A meshgate session cannot
 * become anyone else, so the user and credential in the packet are not read, and the command
 * goes upstream as the COM_RESET_CONNECTION that does exactly that reset to the same account.
 *
 * What a reset cannot also do is refused with a message saying what to send instead: change
 * the database or the character set, or prove a new token (a token names its identity, so a
 * second token could name another). Another collation of the same character set is let
 * through; the session keeps the collation it logged in with.
 */
import { mgError, type MeshgateError } from '../../errors/index.ts';
import type { Identity } from '../../identity/index.ts';
import { decodeChangeUser } from './codec/change-user.ts';
import { Command } from './codec/constants.ts';
import { encodeMessage, type Frame } from './codec/framer.ts';

export interface ChangeUserFacts {
  readonly identity: Identity;
  /** What the client negotiated at login, which shapes its packet. */
  readonly capabilities: number;
  readonly loginCharset: number;
  readonly database: string | null;
  charsetOf(collation: number): string | null;
}

export function changeUserAsReset(frame: Frame, facts: ChangeUserFacts): { readonly frame: Frame } | { readonly refusal: MeshgateError } {
  if (facts.identity.authMethod === 'jwt') {
    return refusal('COM_CHANGE_USER is refused on a session opened with a token, which could name another identity; open a new connection with the other token');
  }
  let request;
  try {
    request = decodeChangeUser(frame.payload, facts.capabilities);
  } catch (error) {
    return { refusal: error as MeshgateError };
  }
  if (request.database !== facts.database) {
    const current = facts.database === null ? 'no database' : `database '${facts.database}'`;
    return refusal(`COM_CHANGE_USER through meshgate resets the session and keeps its ${current}; ask for that one, and send COM_INIT_DB (USE) after it to change database`);
  }
  // Drivers name the server's default collation here, not always the one they logged in
  // with: another collation of the same character set encodes every string alike.
  if (request.charset !== null && request.charset !== facts.loginCharset) {
    const login = facts.charsetOf(facts.loginCharset);
    if (login === null || facts.charsetOf(request.charset) !== login) {
      return refusal(`COM_CHANGE_USER through meshgate keeps the character set the session logged in with (${login ?? `collation ${facts.loginCharset}`}); send SET NAMES after it instead`);
    }
  }
  const reset = Buffer.of(Command.RESET_CONNECTION);
  return { frame: { seq: frame.seq, lastSeq: frame.seq, payload: reset, raw: encodeMessage(reset, frame.seq) } };
}

function refusal(message: string): { readonly refusal: MeshgateError } {
  return { refusal: mgError('MG_COMMAND_FORBIDDEN', message) };
}
