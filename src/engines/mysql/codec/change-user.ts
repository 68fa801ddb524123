/**
 * COM_CHANGE_USER as a client sends it: only what meshgate needs to emulate it (the database
 * the session is to continue in, and its character set). The user and its credential are
 * never read: a meshgate session's identity is the one it proved when it opened.
 * https://mariadb.com/kb/en/com_change_user/
 */
import { Capability, Command } from './constants.ts';
import { PayloadReader } from './wire.ts';

export interface ChangeUserRequest {
  /** The database to continue in; null for none (an empty name). */
  readonly database: string | null;
  /** The collation id the client asks for; null when the packet ends before it. */
  readonly charset: number | null;
}

/** `capabilities`: what the client negotiated at login, which shapes the packet. */
export function decodeChangeUser(payload: Buffer, capabilities: number): ChangeUserRequest {
  const r = new PayloadReader(payload, 'COM_CHANGE_USER');
  if (r.u8() !== Command.CHANGE_USER) throw new TypeError('not a COM_CHANGE_USER payload');
  r.nulBytes();
  // One length byte even where the login used lenenc client data (server: parse_com_change_user_packet).
  if (capabilities & Capability.SECURE_CONNECTION) r.bytes(r.u8());
  else r.nulBytes();
  // Old clients end the packet with the name, unterminated.
  const database = r.buf.indexOf(0, r.offset) < 0 ? r.restBytes().toString('utf8') : r.nulString();
  const charset = r.remaining >= 2 ? r.u16() : null;
  return { database: database === '' ? null : database, charset };
}
