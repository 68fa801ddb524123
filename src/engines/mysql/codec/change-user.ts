/**
 * COM_CHANGE_USER as a client sends it: what meshgate needs to emulate it (the database the
 * session is to continue in, its character set) and the connection attributes it carries. The
 * user and its credential are never read: a meshgate session's identity is the one it proved
 * when it opened.
 * https://mariadb.com/kb/en/com_change_user/
 */
import { Capability, Command } from './constants.ts';
import { PayloadReader } from './wire.ts';

export interface ChangeUserRequest {
  /** The database to continue in; null for none (an empty name). */
  readonly database: string | null;
  /** The collation id the client asks for; null when the packet ends before it. */
  readonly charset: number | null;
  readonly attributes: ReadonlyMap<string, string>;
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
  const attributes = new Map<string, string>();
  if (capabilities & Capability.PLUGIN_AUTH && r.remaining > 0) {
    if (r.buf.indexOf(0, r.offset) < 0) r.restBytes();
    else r.nulBytes();
  }
  if (capabilities & Capability.CONNECT_ATTRS && r.remaining > 0) {
    const block = new PayloadReader(r.lenencBytes(), 'connection attributes');
    while (block.remaining > 0) attributes.set(block.lenencBytes().toString('utf8'), block.lenencBytes().toString('utf8'));
  }
  return { database: database === '' ? null : database, charset, attributes };
}
