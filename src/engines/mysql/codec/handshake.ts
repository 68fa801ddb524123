/**
 * Connection phase messages: the server greeting (HandshakeV10), the client's SSLRequest
 * and HandshakeResponse41, the auth switch request, and COM_CHANGE_USER (which re-runs
 * authentication on an open connection; meshgate sends it only on its own pooled ones).
 * https://mariadb.com/kb/en/connection/
 * https://mariadb.com/kb/en/com_change_user/
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_response.html
 */
import { createHash } from 'node:crypto';
import { mgError } from '../../../errors/index.ts';
import { Capability, Command } from './constants.ts';
import { PayloadReader, PayloadWriter } from './wire.ts';

export interface Greeting {
  readonly protocolVersion: number;
  readonly serverVersion: string;
  readonly connectionId: number;
  /** The full auth-plugin data (scramble), usually 20 bytes. */
  readonly nonce: Buffer;
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly charset: number;
  readonly status: number;
  readonly authPlugin: string;
}

export function encodeGreeting(g: Greeting): Buffer {
  const part1 = g.nonce.subarray(0, 8);
  const part2 = g.nonce.subarray(8);
  return new PayloadWriter()
    .u8(g.protocolVersion)
    .nulString(g.serverVersion)
    .u32(g.connectionId)
    .bytes(part1)
    .u8(0)
    .u16(g.capabilities & 0xffff)
    .u8(g.charset)
    .u16(g.status)
    .u16(g.capabilities >>> 16)
    .u8(g.nonce.length + 1)
    .zeros(6)
    .u32(g.capabilities & Capability.CLIENT_MYSQL ? 0 : g.mariadbCapabilities)
    .bytes(part2)
    .u8(0)
    .nulString(g.authPlugin)
    .toBuffer();
}

export function decodeGreeting(payload: Buffer): Greeting {
  const r = new PayloadReader(payload, 'server greeting');
  const protocolVersion = r.u8();
  if (protocolVersion !== 10) {
    throw mgError('MG_UPSTREAM_PROTOCOL', `upstream speaks protocol version ${protocolVersion}; meshgate needs MySQL protocol 10`);
  }
  const serverVersion = r.nulString();
  const connectionId = r.u32();
  const part1 = r.bytes(8);
  r.skip(1);
  let capabilities = r.u16();
  const charset = r.u8();
  const status = r.u16();
  capabilities = (capabilities | (r.u16() << 16)) >>> 0;
  const authDataLength = r.u8();
  r.skip(6);
  const extended = r.u32();
  const mariadbCapabilities = capabilities & Capability.CLIENT_MYSQL ? 0 : extended;
  let nonce = part1;
  if (capabilities & Capability.SECURE_CONNECTION) {
    const part2 = r.bytes(Math.max(13, authDataLength - 8));
    // The last byte of part 2 is a NUL terminator, not scramble.
    nonce = Buffer.concat([part1, part2.subarray(0, part2.length - 1)]);
  }
  const authPlugin = capabilities & Capability.PLUGIN_AUTH && r.remaining > 0 ? readLenientNul(r) : 'mysql_native_password';
  return { protocolVersion, serverVersion, connectionId, nonce, capabilities, mariadbCapabilities, charset, status, authPlugin };
}

export interface HandshakeResponse {
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly maxPacketSize: number;
  readonly charset: number;
  readonly username: string;
  readonly authResponse: Buffer;
  readonly database: string | null;
  readonly authPlugin: string | null;
  readonly attributes: ReadonlyMap<string, string>;
}

/** The 32-byte SSLRequest is the first 32 bytes of a HandshakeResponse41. */
export const SSL_REQUEST_LENGTH = 32;

export interface ResponsePrefix {
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly maxPacketSize: number;
  readonly charset: number;
}

function decodePrefix(r: PayloadReader): ResponsePrefix {
  const capabilities = r.u32();
  if (!(capabilities & Capability.PROTOCOL_41)) {
    throw mgError('MG_PACKET_MALFORMED', 'the client does not speak protocol 4.1; use a MySQL/MariaDB client from the last 15 years');
  }
  const maxPacketSize = r.u32();
  const charset = r.u8();
  r.skip(19);
  const extended = r.u32();
  const mariadbCapabilities = capabilities & Capability.CLIENT_MYSQL ? 0 : extended;
  return { capabilities, mariadbCapabilities, maxPacketSize, charset };
}

/** Decodes either an SSLRequest (32 bytes) or the start of a full response. */
export function decodeResponsePrefix(payload: Buffer): ResponsePrefix {
  return decodePrefix(new PayloadReader(payload, 'handshake response'));
}

export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new PayloadReader(payload, 'handshake response');
  const prefix = decodePrefix(r);
  const caps = prefix.capabilities;
  const username = r.nulString();
  let authResponse: Buffer;
  if (caps & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes();
  else if (caps & Capability.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = r.nulBytes();
  let database: string | null = null;
  if (caps & Capability.CONNECT_WITH_DB && r.remaining > 0) {
    database = readLenientNul(r);
    if (database === '') database = null;
  }
  let authPlugin: string | null = null;
  if (caps & Capability.PLUGIN_AUTH && r.remaining > 0) authPlugin = readLenientNul(r);
  const attributes = new Map<string, string>();
  if (caps & Capability.CONNECT_ATTRS && r.remaining > 0) {
    const block = new PayloadReader(r.lenencBytes(), 'connection attributes');
    while (block.remaining > 0) {
      const key = block.lenencBytes().toString('utf8');
      attributes.set(key, block.lenencBytes().toString('utf8'));
    }
  }
  return { ...prefix, username, authResponse: Buffer.from(authResponse), database, authPlugin, attributes };
}

/** The SSLRequest a client sends before its TLS handshake: the first 32 bytes of its response, SSL among the capabilities. */
export function encodeSslRequest(p: ResponsePrefix): Buffer {
  return new PayloadWriter()
    .u32(p.capabilities)
    .u32(p.maxPacketSize)
    .u8(p.charset)
    .zeros(19)
    .u32(p.capabilities & Capability.CLIENT_MYSQL ? 0 : p.mariadbCapabilities)
    .toBuffer();
}

export function encodeHandshakeResponse(h: HandshakeResponse): Buffer {
  const caps = h.capabilities;
  const w = new PayloadWriter()
    .u32(caps)
    .u32(h.maxPacketSize)
    .u8(h.charset)
    .zeros(19)
    .u32(caps & Capability.CLIENT_MYSQL ? 0 : h.mariadbCapabilities)
    .nulString(h.username);
  if (caps & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencBytes(h.authResponse);
  else if (caps & Capability.SECURE_CONNECTION) w.u8(h.authResponse.length).bytes(h.authResponse);
  else w.nulString(h.authResponse);
  if (caps & Capability.CONNECT_WITH_DB) w.nulString(h.database ?? '');
  if (caps & Capability.PLUGIN_AUTH) w.nulString(h.authPlugin ?? 'mysql_native_password');
  if (caps & Capability.CONNECT_ATTRS) {
    const block = new PayloadWriter();
    for (const [key, value] of h.attributes) block.lenencBytes(key).lenencBytes(value);
    w.lenencBytes(block.toBuffer());
  }
  return w.toBuffer();
}

export interface ChangeUser {
  /** The capabilities the connection negotiated at login: they decide the packet's layout. */
  readonly capabilities: number;
  readonly username: string;
  readonly authResponse: Buffer;
  /** '' or null: no database selected afterwards. */
  readonly database: string | null;
  readonly charset: number;
  readonly authPlugin: string;
  readonly attributes: ReadonlyMap<string, string>;
}

export function encodeChangeUser(c: ChangeUser): Buffer {
  const caps = c.capabilities;
  const w = new PayloadWriter().u8(Command.CHANGE_USER).nulString(c.username);
  if (caps & Capability.SECURE_CONNECTION) w.u8(c.authResponse.length).bytes(c.authResponse);
  else w.nulString(c.authResponse);
  w.nulString(c.database ?? '').u16(c.charset);
  if (caps & Capability.PLUGIN_AUTH) w.nulString(c.authPlugin);
  if (caps & Capability.CONNECT_ATTRS) {
    const block = new PayloadWriter();
    for (const [key, value] of c.attributes) block.lenencBytes(key).lenencBytes(value);
    w.lenencBytes(block.toBuffer());
  }
  return w.toBuffer();
}

export interface AuthSwitchRequest {
  readonly plugin: string;
  readonly data: Buffer;
}

export function encodeAuthSwitchRequest(request: AuthSwitchRequest): Buffer {
  return new PayloadWriter().u8(0xfe).nulString(request.plugin).bytes(request.data).toBuffer();
}

export function decodeAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  const r = new PayloadReader(payload, 'auth switch request');
  r.skip(1);
  const plugin = readLenientNul(r);
  let data = r.restBytes();
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  return { plugin, data };
}

/** mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))). */
export function nativePasswordScramble(password: string, nonce: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = createHash('sha1').update(password, 'utf8').digest();
  const stage2 = createHash('sha1').update(stage1).digest();
  const mix = createHash('sha1').update(nonce.subarray(0, 20)).update(stage2).digest();
  for (let i = 0; i < mix.length; i++) mix[i]! ^= stage1[i]!;
  return mix;
}

/** Some clients end the packet where a NUL would be; accept both. */
function readLenientNul(r: PayloadReader): string {
  const end = r.buf.indexOf(0, r.offset);
  if (end < 0) return r.restBytes().toString('utf8');
  return r.nulString();
}
