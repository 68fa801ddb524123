/**
 * Logging in to MariaDB as a role's account. Runs the client side of the connection phase
 * with the capabilities the downstream client negotiated, so the command phase that
 * follows can be relayed byte for byte in both directions. With `upstream.tls`, the login
 * goes the way a MySQL client's does: after the greeting an SSLRequest, then the TLS
 * handshake presenting meshgate's certificate, then the handshake response inside TLS; the
 * connection is then a TLSSocket, which the relay and the pool use like any socket.
 */
import * as net from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { mgError } from '../../errors/index.ts';
import { upstreamTlsError, type MariadbClientTls } from '../../transport/mariadb-client-tls.ts';
import { Capability, Header } from './codec/constants.ts';
import { decodeErr, decodeOk, type ErrPacket } from './codec/generic.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import {
  decodeAuthSwitchRequest,
  decodeGreeting,
  encodeHandshakeResponse,
  encodeSslRequest,
  nativePasswordScramble,
  type Greeting,
} from './codec/handshake.ts';
import { mariadbFailure, socketFailure } from './login-failure.ts';
import { upstreamErr } from './errors.ts';

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  /** TLS with meshgate's client certificate (upstream.tls); absent or null: plain TCP. */
  readonly tls?: MariadbClientTls | null;
}

export interface UpstreamLogin {
  readonly user: string;
  readonly password: string;
  readonly database: string | null;
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly charset: number;
  readonly maxPacketSize: number;
  readonly attributes: ReadonlyMap<string, string>;
}

export interface UpstreamConnection {
  /** A TLSSocket with upstream.tls (it is a net.Socket too). */
  readonly socket: net.Socket;
  readonly greeting: Greeting;
  readonly connectionId: number;
  /** Server status flags from the final OK (autocommit, in transaction). */
  readonly status: number;
  /** Bytes that arrived after the final OK; belong to the command phase. */
  readonly leftover: Buffer | null;
}

/**
 * Login errors about what the client asked for, which a direct client would see as they are:
 * 1049 ER_BAD_DB_ERROR (unknown database), 1044 ER_DBACCESS_DENIED_ERROR (the role may not
 * use it). Every other refusal is about meshgate's account and stays meshgate's error.
 */
const CLIENT_REQUEST_ERRORS = new Set([1044, 1049]);

/** The capabilities whose disagreement between client and server would change framing. */
const FRAMING_CAPABILITIES = Capability.DEPRECATE_EOF | Capability.PROTOCOL_41 | Capability.SESSION_TRACK;

const MAX_HANDSHAKE_BYTES = 64 * 1024;

export async function connectUpstream(target: UpstreamTarget, login: UpstreamLogin): Promise<UpstreamConnection> {
  // One budget for the whole login, TLS handshake included.
  const deadline = Date.now() + target.connectTimeoutMs;
  const raw = net.connect({ host: target.host, port: target.port, noDelay: true });
  let socket: net.Socket = raw;
  let frames = frameReader(raw, target, deadline, false);
  try {
    await frames.connected;
    const greetingFrame = await frames.next();
    if (greetingFrame.payload[0] === Header.ERR) throw refused(decodeErr(greetingFrame.payload), target);
    const greeting = decodeGreeting(greetingFrame.payload);
    const missing = login.capabilities & FRAMING_CAPABILITIES & ~greeting.capabilities;
    if (missing !== 0) {
      throw mgError(
        'MG_UPSTREAM_PROTOCOL',
        `the upstream server at ${target.host}:${target.port} lacks capabilities 0x${missing.toString(16)} that the client negotiated; meshgate needs MariaDB 10.2 or later`,
      );
    }
    let capabilities = (login.capabilities & greeting.capabilities & ~Capability.SSL) >>> 0;
    const mariadbCapabilities = login.mariadbCapabilities & greeting.mariadbCapabilities;
    let seq = greetingFrame.seq + 1;
    const tls = target.tls ?? null;
    if (tls !== null) {
      if (!(greeting.capabilities & Capability.SSL)) {
        throw mgError(
          'MG_UPSTREAM_UNAVAILABLE',
          `MariaDB at ${target.host}:${target.port} does not offer TLS, which upstream.tls asks for: give MariaDB ssl_cert, ssl_key and ssl_ca (SHOW VARIABLES LIKE 'have_ssl' must say YES), or remove upstream.tls`,
          socketFailure('HANDSHAKE_NO_SSL_SUPPORT', 'the server does not offer TLS'),
        );
      }
      capabilities = (capabilities | Capability.SSL) >>> 0;
      raw.write(encodeMessage(encodeSslRequest({ capabilities, mariadbCapabilities, maxPacketSize: login.maxPacketSize, charset: login.charset }), seq++));
      if (frames.release() !== null) throw mgError('MG_UPSTREAM_PROTOCOL', `MariaDB at ${target.host}:${target.port} sent more than its greeting before TLS`);
      // From here the TLS socket owns the connection and reports its errors.
      raw.on('error', () => undefined);
      socket = await startTls(raw, tls, target, deadline);
      frames = frameReader(socket, target, deadline, true, tls);
    }
    const response = encodeHandshakeResponse({
      capabilities,
      mariadbCapabilities,
      maxPacketSize: login.maxPacketSize,
      charset: login.charset,
      username: login.user,
      authResponse: nativePasswordScramble(login.password, greeting.nonce),
      database: login.database,
      authPlugin: 'mysql_native_password',
      attributes: login.attributes,
    });
    socket.write(encodeMessage(response, seq));
    let reply = await frames.next();
    if (reply.payload[0] === Header.EOF) {
      const request = decodeAuthSwitchRequest(reply.payload);
      if (request.plugin !== 'mysql_native_password') {
        throw mgError(
          'MG_UPSTREAM_AUTH_FAILED',
          `upstream account '${login.user}' uses auth plugin ${request.plugin}; meshgate logs in with mysql_native_password: ALTER USER it IDENTIFIED VIA mysql_native_password`,
        );
      }
      socket.write(encodeMessage(nativePasswordScramble(login.password, request.data), reply.seq + 1));
      reply = await frames.next();
    }
    if (reply.payload[0] === Header.ERR) {
      const err = decodeErr(reply.payload);
      if (CLIENT_REQUEST_ERRORS.has(err.code)) {
        // What the client asked for, not meshgate's account: the client gets MariaDB's answer.
        throw mgError('MG_UPSTREAM_REFUSED', `MariaDB refused the login's request (${err.code}: ${err.message})`, upstreamErr(err));
      }
      throw mgError(
        'MG_UPSTREAM_AUTH_FAILED',
        `MariaDB refused meshgate's login as '${login.user}' (${err.code}: ${err.message}); operator: check that the account exists and its password in the meshgate config (upstream.roles), or that its lease was not revoked (meshgate creds list)`,
        mariadbFailure(err.code, err.message),
      );
    }
    if (reply.payload[0] !== Header.OK) {
      throw mgError('MG_UPSTREAM_PROTOCOL', `unexpected reply 0x${reply.payload[0]?.toString(16)} to meshgate's login`);
    }
    const status = decodeOk(reply.payload).status;
    return { socket, greeting, connectionId: greeting.connectionId, status, leftover: frames.release() };
  } catch (error) {
    frames.release();
    socket.destroy();
    raw.destroy();
    throw error;
  }
}

/** The TLS handshake over the connected socket, within what is left of the login's time. */
function startTls(raw: net.Socket, tls: MariadbClientTls, target: UpstreamTarget, deadline: number): Promise<TLSSocket> {
  const where = `MariaDB at ${target.host}:${target.port}`;
  return new Promise((resolve, reject) => {
    const secure = tlsConnect(tls.connectOptions(raw, target.host));
    const fail = (error: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(mgError('MG_UPSTREAM_UNAVAILABLE', `${where} did not finish the TLS handshake within ${target.connectTimeoutMs} ms`, socketFailure('ETIMEDOUT', 'no TLS handshake in time'))),
      Math.max(0, deadline - Date.now()),
    );
    const onError = (error: Error) => fail(upstreamTlsError(tls, where, target.host, error));
    secure.once('error', onError);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', onError);
      resolve(secure);
    });
  });
}

/** MariaDB answers the connection with an ERR instead of a greeting (host not allowed, too many connections). */
function refused(err: ErrPacket, target: UpstreamTarget) {
  return mgError('MG_UPSTREAM_UNAVAILABLE', `MariaDB at ${target.host}:${target.port} refused the connection: ${err.message}`, mariadbFailure(err.code, err.message));
}

interface FrameReader {
  readonly connected: Promise<void>;
  next(): Promise<Frame>;
  /** Stops reading; returns bytes already received past the last frame taken. */
  release(): Buffer | null;
}

/** A small pull-style reader for the few handshake packets; the command phase streams. */
function frameReader(socket: net.Socket, target: UpstreamTarget, deadline: number, alreadyConnected: boolean, tls?: MariadbClientTls): FrameReader {
  const framer = new PacketFramer(MAX_HANDSHAKE_BYTES);
  const ready: Frame[] = [];
  let failure: Error | null = null;
  let waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  let raw: Buffer[] = [];

  const fail = (error: Error) => {
    failure ??= error;
    waiter?.reject(failure);
    waiter = null;
  };
  const timer = setTimeout(
    () =>
      fail(
        mgError(
          'MG_UPSTREAM_UNAVAILABLE',
          `MariaDB at ${target.host}:${target.port} did not answer within ${target.connectTimeoutMs} ms; check that it is running and reachable`,
          socketFailure('ETIMEDOUT', 'no answer in time'),
        ),
      ),
    Math.max(0, deadline - Date.now()),
  );
  const onData = (chunk: Buffer) => {
    raw.push(chunk);
    try {
      for (const frame of framer.push(chunk)) ready.push(frame);
    } catch (error) {
      fail(error as Error);
      return;
    }
    if (waiter !== null && ready.length > 0) {
      const w = waiter;
      waiter = null;
      w.resolve(ready.shift()!);
    }
  };
  const onError = (error: Error & { code?: string }) =>
    // A server that refuses meshgate's certificate says so with a TLS alert after the handshake.
    tls !== undefined && error.code?.startsWith('ERR_SSL') === true
      ? fail(upstreamTlsError(tls, `MariaDB at ${target.host}:${target.port}`, target.host, error))
      : fail(mgError('MG_UPSTREAM_UNAVAILABLE', `cannot reach MariaDB at ${target.host}:${target.port} (${(error as NodeJS.ErrnoException).code ?? error.message}); check upstream.host/port and that MariaDB is running`, error));
  const onClose = () =>
    fail(mgError('MG_UPSTREAM_UNAVAILABLE', `MariaDB at ${target.host}:${target.port} closed the connection during login`, socketFailure('ECONNRESET', 'closed during login')));
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
  const connected = alreadyConnected
    ? Promise.resolve()
    : new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', () => reject(failure));
      });
  connected.catch(() => {});

  return {
    connected,
    next() {
      if (ready.length > 0) return Promise.resolve(ready.shift()!);
      if (failure !== null) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    release() {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      // Bytes beyond the frames consumed: frames still queued plus any partial packet.
      const rest = [...ready.map((f) => f.raw)];
      const partial = framer.buffered;
      if (partial > 0) {
        const all = Buffer.concat(raw);
        rest.push(all.subarray(all.length - partial));
      }
      raw = [];
      return rest.length === 0 ? null : Buffer.concat(rest);
    },
  };
}
