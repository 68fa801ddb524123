/**
 * The HTTP/2 listener in front of gRPC engines (Firestore): accepts connections, proves who
 * is calling each request, and hands the engine only calls that carry an identity. The
 * engine never sees an `x-forwarded-client-cert` header: one from a trusted hop became the
 * identity, one from anywhere else was stripped, and either way the call says which.
 *
 * Two ways to listen:
 *  - TLS with client certificates (SVIDs), reloaded with the files when they change;
 *  - plaintext h2c, for a port only the local Istio sidecar reaches (it terminated the
 *    caller's mTLS and forwards XFCC). Calls from other hops get no identity from XFCC.
 *
 * Every wait is bounded (timeouts): a connection has `handshakeMs` from accept to its HTTP/2
 * preface (TLS included), and an open connection without calls is closed after `idleMs`
 * (GOAWAY); a call's own request is the engine's to bound. A connection refused before any
 * call (TLS too old or failed, not HTTP/2, too slow) is reported to `onConnectionRefused`, for
 * the engine to audit.
 */
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { mgError, type MeshgateError } from '../../errors/index.ts';
import { tlsFactsOf, type Identity, type IdentityResolver, type TlsPeerFacts, type XfccNote } from '../../identity/index.ts';
import type { Logger } from '../../log.ts';
import { tlsRefusal } from '../tls-refusal.ts';
import { refuseCall } from './status.ts';

const XFCC = 'x-forwarded-client-cert';

export interface GrpcPeer {
  readonly address: string;
  readonly port: number;
}

/** A call with a proven caller, for the engine to authorize and forward. */
export interface GrpcCall {
  readonly stream: ServerHttp2Stream;
  /** The request headers, without `x-forwarded-client-cert`. */
  readonly headers: IncomingHttpHeaders;
  /** `package.Service/Method`, from `:path`. */
  readonly method: string;
  readonly identity: Identity;
  readonly xfcc: XfccNote | null;
  readonly peer: GrpcPeer;
  /** process.hrtime.bigint() when the request arrived. */
  readonly startedAt: bigint;
  /** process.hrtime.bigint() when the caller's identity was known. */
  readonly identifiedAt: bigint;
}

/** A call refused before the engine saw it (no identity, not gRPC); already answered. */
export interface RefusedCall {
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly error: MeshgateError;
  readonly xfcc: XfccNote | null;
  readonly peer: GrpcPeer;
  readonly startedAt: bigint;
}

/** A connection turned away before it made a call; already closed. */
export interface RefusedConnection {
  readonly peer: GrpcPeer;
  readonly error: MeshgateError;
}

export interface FrontDoorTimeouts {
  /** Accept to the client's HTTP/2 preface, TLS handshake included. */
  readonly handshakeMs: number;
  /** A connection with no call open this long is closed (GOAWAY; clients reconnect when they need to). */
  readonly idleMs: number;
}

export const DEFAULT_FRONT_DOOR_TIMEOUTS: FrontDoorTimeouts = { handshakeMs: 10_000, idleMs: 300_000 };

export interface FrontDoorTls {
  /** Current certificate, key and trust bundle. */
  contextOptions(): SecureContextOptions;
  /** Called after the files changed; the listener then serves the new material. */
  subscribe(listener: () => void): () => void;
}

export interface GrpcFrontDoorOptions {
  /** Null: plaintext h2c, for a port only the local sidecar can reach. */
  readonly tls: FrontDoorTls | null;
  /** The identity stage every engine shares. */
  readonly identity: IdentityResolver;
  /** Addresses or CIDRs of the local sidecar, whose `x-forwarded-client-cert` is believed. */
  readonly trustedHops: readonly string[];
  readonly log: Logger;
  /** Streams per connection; bounds what one client can make meshgate hold. */
  readonly maxConcurrentStreams?: number;
  readonly timeouts?: FrontDoorTimeouts;
  onCall(call: GrpcCall): void;
  onRefused(refusal: RefusedCall): void;
  onConnectionRefused?(refusal: RefusedConnection): void;
}

/** A connection that has not sent its HTTP/2 preface yet. */
interface Arriving {
  /** The TCP socket (TLS servers: until the handshake is done, then the session holds it). */
  socket: Socket | null;
  session: Http2Session | null;
  readonly timer: NodeJS.Timeout;
  secured: boolean;
  refused: boolean;
}

export class GrpcFrontDoor {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly sessions = new Set<Http2Session>();
  private readonly unsubscribe: () => void = () => {};
  /** Verified once per connection: every stream on it shares the TLS peer. */
  private readonly tlsFacts = new WeakMap<Http2Session, TlsPeerFacts>();

  private readonly timeouts: FrontDoorTimeouts;
  /** Connections between accept and their HTTP/2 preface, by `address:port`. */
  private readonly arriving = new Map<string, Arriving>();
  private readonly closed: Promise<void>;
  private resolveClosed: () => void = () => {};
  private draining = false;

  constructor(private readonly options: GrpcFrontDoorOptions) {
    this.timeouts = options.timeouts ?? DEFAULT_FRONT_DOOR_TIMEOUTS;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const settings = { maxConcurrentStreams: options.maxConcurrentStreams ?? 256 };
    if (options.tls === null) {
      this.server = createServer({ settings });
    } else {
      const tls = options.tls;
      this.server = createSecureServer({
        ...tls.contextOptions(),
        settings,
        minVersion: 'TLSv1.2',
        // Verified per call, so that a refusal reaches the client as a gRPC status it can show.
        requestCert: true,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
        // A backstop only: the handshake deadline below ends a slow connection first, and says so.
        handshakeTimeout: this.timeouts.handshakeMs + 1000,
      });
      const secure = this.server as Http2SecureServer;
      this.unsubscribe = tls.subscribe(() => secure.setSecureContext(tls.contextOptions()));
      secure.on('secureConnection', (socket: TLSSocket) => {
        const arriving = this.arriving.get(keyOf(socket));
        if (arriving !== undefined) arriving.secured = true;
      });
      secure.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
        const refusal = tlsRefusal(error);
        if (refusal !== null) this.refuseConnection(keyOf(socket), socket, refusal);
      });
      secure.on('unknownProtocol', (socket: TLSSocket) => {
        this.refuseConnection(keyOf(socket), socket, mgError('MG_PACKET_MALFORMED', 'the client did not ask for HTTP/2 in ALPN (h2); this port speaks gRPC over HTTP/2'));
        socket.destroy();
      });
      // TLS: the deadline runs from accept, through the handshake, to the preface.
      secure.on('connection', (socket: Socket) => {
        const key = keyOf(socket);
        const arriving = this.arrived(key);
        arriving.socket = socket;
        socket.once('close', () => {
          if (this.arriving.get(key) === arriving) this.forget(key);
        });
      });
    }
    this.server.on('session', (session: Http2Session) => {
      // Read now: a destroyed session has no socket any more. (h2c: the session comes with the connection.)
      const peer = { remoteAddress: session.socket.remoteAddress, remotePort: session.socket.remotePort };
      const key = keyOf(peer);
      const arriving = this.arriving.get(key) ?? this.arrived(key);
      arriving.session = session;
      arriving.secured = true;
      this.sessions.add(session);
      session.once('close', () => {
        this.sessions.delete(session);
        this.forget(key);
      });
      let open = false;
      session.once('remoteSettings', () => {
        open = true;
        this.opened(session, key);
      });
      // A session error is one client's problem; the listener goes on. (Its socket may have
      // closed, and the connection been forgotten, before the error is told.)
      session.on('error', (error: NodeJS.ErrnoException) => {
        if (!open) this.refuseConnection(key, peer, mgError('MG_PACKET_MALFORMED', `the client did not open with the HTTP/2 preface (${error.message}); this port speaks gRPC over HTTP/2`));
        else options.log.warn('HTTP/2 connection failed', { error: error.message });
      });
    });
    this.server.on('stream', (stream, headers) => void this.accept(stream, headers));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting connections and calls (GOAWAY); calls under way go on. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.unsubscribe();
    if (this.server.listening) this.server.close(() => this.resolveClosed());
    else this.resolveClosed();
    for (const session of this.sessions) session.close();
    for (const arriving of this.arriving.values()) arriving.socket?.destroy();
  }

  /**
   * Stops accepting; connections whose calls are done close as they flush (a second at most),
   * and calls still open are cancelled.
   */
  async close(): Promise<void> {
    this.drain();
    const flushed = [...this.sessions].map((session) => new Promise<void>((resolve) => session.once('close', () => resolve())));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(flushed), new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
    clearTimeout(timer);
    for (const session of this.sessions) session.destroy();
    await this.closed;
  }

  // ── connections: bounded from accept to the preface, then while idle ──────────────────

  /** Starts a connection's handshake deadline, under `address:port`. */
  private arrived(key: string): Arriving {
    const timer = setTimeout(() => this.handshakeTimedOut(key), this.timeouts.handshakeMs);
    timer.unref();
    const arriving: Arriving = { socket: null, session: null, timer, secured: false, refused: false };
    this.arriving.set(key, arriving);
    return arriving;
  }

  private forget(key: string): void {
    const arriving = this.arriving.get(key);
    if (arriving === undefined) return;
    clearTimeout(arriving.timer);
    this.arriving.delete(key);
  }

  private handshakeTimedOut(key: string): void {
    const arriving = this.arriving.get(key);
    if (arriving === undefined) return;
    const seconds = this.timeouts.handshakeMs / 1000;
    const what = arriving.secured ? 'send the HTTP/2 preface' : 'finish the TLS handshake';
    const peer = arriving.socket ?? arriving.session?.socket ?? null;
    if (peer !== null) this.refuseConnection(key, peer, mgError('MG_CLIENT_TIMEOUT', `the client did not ${what} within ${seconds} s (firestore.timeouts.handshake); meshgate closed the connection`));
    this.forget(key);
    // Once HTTP/2 holds the connection, only its session can close it.
    if (arriving.session !== null) arriving.session.destroy();
    else arriving.socket?.destroy();
  }

  /** Reports a refusal once per connection. */
  private refuseConnection(key: string, socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }, error: MeshgateError): void {
    const arriving = this.arriving.get(key);
    if (arriving !== undefined) {
      if (arriving.refused) return;
      arriving.refused = true;
    }
    this.options.onConnectionRefused?.({ peer: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }, error });
  }

  /** The client's preface came: the connection is open, and from now on closed when idle. */
  private opened(session: Http2Session, key: string): void {
    this.forget(key);
    let open = 0;
    let idle: NodeJS.Timeout | null = null;
    const arm = () => {
      idle = setTimeout(() => session.close(), this.timeouts.idleMs);
      idle.unref();
    };
    session.on('stream', (stream: ServerHttp2Stream) => {
      open++;
      if (idle !== null) clearTimeout(idle);
      idle = null;
      stream.once('close', () => {
        if (--open === 0 && !session.closed) arm();
      });
    });
    session.once('close', () => {
      if (idle !== null) clearTimeout(idle);
    });
    arm();
  }

  private async accept(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const startedAt = process.hrtime.bigint();
    stream.on('error', () => {}); // a reset stream is the client's choice, not a failure of meshgate
    const session = stream.session as Http2Session;
    const socket = session.socket;
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const method = (headerText(headers[constants.HTTP2_HEADER_PATH]) ?? '').replace(/^\//, '');
    const xfccHeader = headerText(headers[XFCC]);
    // Removed before anything else reads the headers: the engine forwards what remains.
    delete headers[XFCC];
    const refuse = (error: MeshgateError, xfcc: XfccNote | null, withHeaders = true) => {
      refuseCall(stream, error, { withHeaders });
      this.options.onRefused({ headers, method, error, xfcc, peer, startedAt });
    };
    if (!isGrpc(headers)) {
      refuse(mgError('MG_PACKET_MALFORMED', 'this port speaks gRPC over HTTP/2 (POST, content-type application/grpc); point a gRPC client at it'), null, false);
      return;
    }
    const bearer = bearerToken(headerText(headers.authorization));
    const verdict = await this.options.identity.resolve({
      protocol: 'grpc',
      remoteAddress: peer.address,
      tls: this.tlsFactsOf(session),
      trustedHops: this.options.trustedHops,
      xfcc: xfccHeader,
      token: bearer === null ? undefined : { value: bearer, via: 'bearer' },
    });
    if (verdict.identity === null) {
      refuse(verdict.error, verdict.xfcc);
      return;
    }
    if (stream.destroyed) return;
    this.options.onCall({ stream, headers, method, identity: verdict.identity, xfcc: verdict.xfcc, peer, startedAt, identifiedAt: process.hrtime.bigint() });
  }

  private tlsFactsOf(session: Http2Session): TlsPeerFacts | null {
    if (this.options.tls === null) return null;
    let facts = this.tlsFacts.get(session);
    if (facts === undefined) {
      facts = tlsFactsOf(session.socket as TLSSocket);
      this.tlsFacts.set(session, facts);
    }
    return facts;
  }
}

function keyOf(socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }): string {
  return `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function bearerToken(authorization: string | undefined): string | null {
  return authorization === undefined ? null : (BEARER.exec(authorization)?.[1] ?? null);
}

function headerText(value: string | string[] | undefined): string | undefined {
  // Repeated headers are one list (RFC 9110 §5.3); XFCC elements are comma-separated too.
  return Array.isArray(value) ? value.join(',') : value;
}

function isGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headerText(headers[constants.HTTP2_HEADER_CONTENT_TYPE]) ?? '';
  return headers[constants.HTTP2_HEADER_METHOD] === 'POST' && /^application\/grpc(\+proto)?(;|$)/.test(type);
}
