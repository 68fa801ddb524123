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
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { mgError, type MeshgateError } from '../../errors/index.ts';
import { tlsFactsOf, type Identity, type IdentityResolver, type TlsPeerFacts, type XfccNote } from '../../identity/index.ts';
import type { Logger } from '../../log.ts';
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
  onCall(call: GrpcCall): void;
  onRefused(refusal: RefusedCall): void;
}

export class GrpcFrontDoor {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly sessions = new Set<Http2Session>();
  private readonly unsubscribe: () => void = () => {};
  /** Verified once per connection: every stream on it shares the TLS peer. */
  private readonly tlsFacts = new WeakMap<Http2Session, TlsPeerFacts>();

  constructor(private readonly options: GrpcFrontDoorOptions) {
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
      });
      const secure = this.server as Http2SecureServer;
      this.unsubscribe = tls.subscribe(() => secure.setSecureContext(tls.contextOptions()));
    }
    this.server.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      // A session error is one client's problem; the listener goes on.
      session.on('error', (error) => options.log.warn('HTTP/2 connection failed', { error: error.message }));
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

  /** Stops accepting; open calls are cancelled. */
  async close(): Promise<void> {
    this.unsubscribe();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.destroy();
    await closed;
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
    this.options.onCall({ stream, headers, method, identity: verdict.identity, xfcc: verdict.xfcc, peer, startedAt });
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
