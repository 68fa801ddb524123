/**
 * One client connection, from greeting to the start of the command phase:
 *
 *   greeting ──▶ SSLRequest ──▶ TLS handshake ──▶ HandshakeResponse ──▶ identity ──▶ policy
 *            ──▶ upstream login as the role's account ──▶ OK ──▶ Relay (command phase)
 *
 * Every refusal is an ERR packet the client shows its user, plus an audit event; then the
 * connection closes. Nothing here parses bytes (the codec does) or knows policy syntax.
 */
import { TLSSocket, type SecureContext } from 'node:tls';
import type { PeerAddress } from '../../audit/index.ts';
import { asMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import { tlsFactsOf, type TlsPeerFacts } from '../../identity/index.ts';
import type { CompiledPolicy } from '../../policy/index.ts';
import type { Logger } from '../../log.ts';
import { tlsRefusal } from '../../transport/tls-refusal.ts';
import { Capability, RELAYABLE_CAPABILITIES, RELAYABLE_MARIADB_CAPABILITIES, ServerStatus } from './codec/constants.ts';
import { encodeErr, encodeOk } from './codec/generic.ts';
import { encodeMessage, PacketFramer, type Frame } from './codec/framer.ts';
import {
  decodeHandshakeResponse,
  decodeResponsePrefix,
  encodeAuthSwitchRequest,
  encodeGreeting,
  SSL_REQUEST_LENGTH,
  type HandshakeResponse,
} from './codec/handshake.ts';
import { nextClientConnectionId } from './directory.ts';
import { toErrPacket } from './errors.ts';
import type { SessionCommands } from './command-handler.ts';
import type { LoginHandler, LoginOutcome } from './login-stages.ts';
import type { ServerProfile } from './profile.ts';
import { Relay } from './relay.ts';
import { printableNonce, tokenFromPassword } from './session-support.ts';
import type { UpstreamConnection } from './upstream.ts';

/** A client connection: a net.Socket, or a test's in-memory stream with the same few members. */
export type ClientSocket = import('node:stream').Duplex & {
  setNoDelay?(noDelay?: boolean): unknown;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly bytesRead?: number;
};

/** What a session needs to speak the protocol; the stages it reports to come separately. */
export interface SessionSettings {
  readonly profile: ServerProfile;
  readonly tlsRequired: boolean;
  /** `starttls`: MySQL's SSLRequest after the greeting; `first-byte`: TLS from the first byte (Istio). */
  readonly tlsMode: 'starttls' | 'first-byte';
  secureContext(): SecureContext;
  readonly maxClientMessageBytes: number;
  readonly log: Logger;
  /** From accept to the end of login (TLS included); then the session is relaying or gone. */
  readonly handshakeTimeoutMs: number;
  /** How long a session that is ending waits for MariaDB's answers to what it already sent. */
  readonly drainTimeoutMs: number;
}

type State = 'greeted' | 'tls' | 'secured' | 'switching' | 'authorizing' | 'relaying' | 'closed';


/** Handshake messages are small; anything bigger before login is an attack or a mistake. */
const MAX_HANDSHAKE_MESSAGE_BYTES = 64 * 1024;

/** How long a silent client on the Istio-mode port is given before it is told to use TLS. */
const SILENT_CLIENT_MS = 2_000;

export class MysqlSession {
  private state: State = 'greeted';
  private client: ClientSocket;
  private framer = new PacketFramer(MAX_HANDSHAKE_MESSAGE_BYTES);
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private tlsFacts: TlsPeerFacts | null = null;
  private early: Frame[] = [];
  private handshakeTimer: NodeJS.Timeout | null = null;
  /** The login waiting for the client's clear-text password (its token). */
  private pendingLogin: HandshakeResponse | null = null;
  private relay: Relay | null = null;
  /** The accepted login's command stages, once relaying: a reloaded policy asks them again. */
  private commands: SessionCommands | null = null;
  private readonly startedAt = Date.now();
  /** The connection id the greeting gives the client; KILL names it. */
  private readonly connectionId = nextClientConnectionId();

  constructor(
    private readonly raw: ClientSocket,
    private readonly ctx: SessionSettings,
    private readonly handler: LoginHandler,
    readonly sessionId: string,
    private readonly onClose: () => void,
  ) {
    this.client = raw;
  }

  start(): void {
    this.handshakeTimer = setTimeout(() => this.handshakeTimedOut(), this.ctx.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    this.raw.setNoDelay?.(true);
    this.raw.on('error', () => this.clientGone('client connection failed'));
    this.raw.on('close', () => this.clientGone('client closed the connection'));
    if (this.ctx.tlsMode === 'first-byte') {
      // Istio mode: the client's sidecar opens TLS before any MySQL byte; the greeting and
      // everything after it travel inside that TLS. A TLS client speaks first, at once.
      setTimeout(() => this.silentClient(), SILENT_CLIENT_MS).unref();
      this.upgradeToTls(() => this.sendGreeting(false));
      return;
    }
    this.raw.on('data', this.onData);
    this.sendGreeting(true);
  }

  /** `offerTls`: advertise CLIENT_SSL so the client sends an SSLRequest (MySQL's STARTTLS). */
  private sendGreeting(offerTls: boolean): void {
    const capabilities = (this.ctx.profile.capabilities & RELAYABLE_CAPABILITIES & ~Capability.SSL) | (offerTls ? Capability.SSL : 0);
    const greeting = encodeGreeting({
      protocolVersion: 10,
      serverVersion: this.ctx.profile.serverVersion,
      connectionId: this.connectionId,
      nonce: printableNonce(),
      capabilities: capabilities >>> 0,
      mariadbCapabilities: this.ctx.profile.mariadbCapabilities & RELAYABLE_MARIADB_CAPABILITIES,
      charset: this.ctx.profile.charset,
      status: ServerStatus.AUTOCOMMIT,
      authPlugin: 'mysql_native_password',
    });
    this.client.write(encodeMessage(greeting, 0));
  }

  /**
   * Silence on the Istio-mode port is a MySQL client talking to it directly, waiting for a
   * greeting: an ERR in the greeting's place is what it can show its user.
   */
  private silentClient(): void {
    if (this.state !== 'tls' || (this.raw.bytesRead ?? 0) > 0) return;
    const error = mgError(
      'MG_TLS_REQUIRED',
      'this meshgate listener expects TLS from the first byte (Istio mode): connect through your Istio sidecar, or use a listener in starttls mode with --ssl',
    );
    this.handler.onRefused({ sessionId: this.sessionId, peer: this.peer(), tls: null, response: null, error });
    this.raw.end(encodeMessage(encodeErr(toErrPacket(error)), 0));
    this.finish();
  }

  /** A client that never finishes logging in must not hold a session open; the refusal is audited. */
  private handshakeTimedOut(): void {
    if (this.state === 'relaying' || this.state === 'closed' || this.state === 'authorizing') return;
    const seconds = this.ctx.handshakeTimeoutMs / 1000;
    const during = this.state === 'tls' ? 'the TLS handshake' : 'logging in';
    const error = mgError('MG_CLIENT_TIMEOUT', `the client did not finish ${during} within ${seconds} s (listener.timeouts.handshake); meshgate closed the connection`);
    this.handler.onRefused({ sessionId: this.sessionId, peer: this.peer(), tls: this.tlsFacts, response: null, error });
    this.destroy();
  }

  /**
   * A reloaded policy judges the session again (`policy.openSessions: reevaluate`): true when
   * it no longer allows it, and the session is ending (answers due still reach the client).
   */
  redecide(policy: CompiledPolicy): boolean {
    if (this.state !== 'relaying' || this.commands?.redecide === undefined) return false;
    const refusal = this.commands.redecide(policy);
    if (refusal === null) return false;
    this.ctx.log.warn('session ended: the reloaded policy no longer allows it', { sessionId: this.sessionId, identity: this.commands.identity, policyVersion: policy.version, reason: refusal });
    this.close(`policy version ${policy.version} no longer allows this session: ${refusal}`);
    return true;
  }

  /**
   * Ends the session from outside (shutdown, a reloaded policy). A relaying session finishes
   * the answers MariaDB still owes (bounded), tells a client that waits for nothing why
   * (`farewell`), records its end, and then reports closed; others close now.
   */
  close(reason = 'meshgate shut down', farewell?: MeshgateError): void {
    if (this.state === 'closed') return;
    if (this.relay !== null) {
      this.relay.stop(reason, farewell === undefined ? null : encodeMessage(encodeErr(toErrPacket(farewell)), 0));
      return;
    }
    this.destroy();
  }

  /** The client's socket closed or failed: a relaying session still settles what it sent. */
  private clientGone(reason: string): void {
    if (this.relay !== null) this.relay.clientGone(reason);
    else this.destroy();
  }

  private destroy(): void {
    if (this.state === 'closed') return;
    this.client.destroy();
    this.raw.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.onClose();
  }

  private receive(chunk: Buffer): void {
    if (this.state === 'tls' || this.state === 'closed') return;
    let frames: Frame[];
    try {
      // Up to the SSLRequest, take one message at a time: TLS bytes may follow it.
      frames = this.framer.push(chunk, this.state === 'greeted' ? 1 : Infinity);
    } catch (error) {
      this.refuse(asMeshgateError(error), 1, null);
      return;
    }
    for (const frame of frames) {
      const state = this.state as State;
      if (state === 'closed') return;
      if (state === 'authorizing') {
        // Commands pipelined behind the login wait for the relay.
        this.early.push(frame);
        continue;
      }
      try {
        this.onHandshakeFrame(frame);
      } catch (error) {
        this.refuse(asMeshgateError(error), frame.seq + 1, null);
        return;
      }
    }
  }

  private onHandshakeFrame(frame: Frame): void {
    if (this.state === 'greeted') {
      const prefix = decodeResponsePrefix(frame.payload);
      if (frame.payload.length === SSL_REQUEST_LENGTH && prefix.capabilities & Capability.SSL) {
        this.upgradeToTls();
        return;
      }
      if (this.ctx.tlsRequired) {
        throw mgError(
          'MG_TLS_REQUIRED',
          'meshgate accepts only TLS connections with a client certificate: connect with --ssl --ssl-cert/--ssl-key/--ssl-ca (mariadb CLI) or ssl: { cert, key, ca } (drivers)',
        );
      }
      this.authorize(decodeHandshakeResponse(frame.payload), frame.seq);
      return;
    }
    if (this.state === 'secured') {
      this.authorize(decodeHandshakeResponse(frame.payload), frame.seq);
      return;
    }
    if (this.state === 'switching' && this.pendingLogin !== null) {
      const login = this.pendingLogin;
      this.pendingLogin = null;
      this.login(login, frame.seq, tokenFromPassword(frame.payload));
      return;
    }
    // Anything sent while meshgate is still deciding is out of protocol order.
    throw mgError('MG_PACKET_MALFORMED', 'the client sent data before the handshake finished; use a standard MySQL/MariaDB client');
  }

  /** `then`: what follows the handshake (first-byte mode sends the greeting only now). */
  private upgradeToTls(then?: () => void): void {
    this.state = 'tls';
    this.raw.off('data', this.onData);
    this.raw.pause();
    // A client may send its TLS ClientHello right behind the SSLRequest, in the same read.
    const early = this.framer.takeRemainder();
    if (early !== null) this.raw.unshift(early);
    const tlsSocket = new TLSSocket(this.raw, {
      isServer: true,
      secureContext: this.ctx.secureContext(),
      requestCert: true,
      rejectUnauthorized: false,
      // Istio sidecars offer istio-peer-exchange/istio; other clients may offer nothing or
      // h2. The protocol inside is MySQL whatever was offered, so any offer is accepted.
      ALPNCallback: ({ protocols }) => protocols[0],
    });
    this.client = tlsSocket;
    this.framer = new PacketFramer(MAX_HANDSHAKE_MESSAGE_BYTES);
    tlsSocket.on('error', (error: NodeJS.ErrnoException) => {
      // A failed handshake (TLS 1.0, garbage, an alert) is a refusal, audited; later errors are the client going away.
      const refusal = this.state === 'tls' ? tlsRefusal(error) : null;
      if (refusal !== null) this.handler.onRefused({ sessionId: this.sessionId, peer: this.peer(), tls: null, response: null, error: refusal });
      this.clientGone('client connection failed');
    });
    tlsSocket.once('secure', () => {
      if (this.state !== 'tls') return;
      this.state = 'secured';
      this.tlsFacts = tlsFactsOf(tlsSocket);
      then?.();
    });
    tlsSocket.on('data', this.onData);
  }

  /**
   * Who is it? A client certificate answers at once. Without one, where tokens can prove an
   * identity, the password is the token: meshgate asks for it in clear text
   * (mysql_clear_password), which the identity stage accepts only inside TLS.
   */
  private authorize(response: HandshakeResponse, seq: number): void {
    if (this.handler.wantsToken(this.tlsFacts) && this.tlsFacts !== null && !(response.authPlugin === 'mysql_clear_password' && response.authResponse.length > 0)) {
      this.pendingLogin = response;
      this.state = 'switching';
      this.client.write(encodeMessage(encodeAuthSwitchRequest({ plugin: 'mysql_clear_password', data: Buffer.alloc(0) }), seq + 1));
      return;
    }
    const token = response.authPlugin === 'mysql_clear_password' ? tokenFromPassword(response.authResponse) : null;
    this.login(response, seq, token);
  }

  /** Hands the login to the stages (identity → policy → throttle → upstream) and waits. */
  private login(response: HandshakeResponse, seq: number, token: string | null): void {
    this.state = 'authorizing';
    this.client.pause();
    this.handler
      .onLogin({ sessionId: this.sessionId, connectionId: this.connectionId, peer: this.peer(), tls: this.tlsFacts, response, token, startedAt: this.startedAt })
      .then(
        (outcome) => this.begin(outcome, response, seq),
        (error: unknown) => this.refuse(asMeshgateError(error), seq + 1, response),
      );
  }

  private begin(outcome: LoginOutcome, response: HandshakeResponse, seq: number): void {
    if (!outcome.accepted) {
      this.sendRefusal(outcome.error, seq + 1);
      return;
    }
    const { upstream: use, commands } = outcome;
    const upstream = use.connection;
    if (this.state !== 'authorizing') {
      commands.abandon();
      use.finish(null);
      upstream.socket.destroy();
      return;
    }
    // The connection is on the record before the client has its OK; with strict audit, on
    // disk (docs/audit-durability.md).
    commands.begin();
    const afterDurable = commands.afterDurable?.bind(commands) ?? ((callback: (error: MeshgateError | null) => void) => callback(null));
    afterDurable((error) => {
      if (error === null && this.state === 'authorizing') {
        this.relayCommands(outcome, response, seq);
        return;
      }
      const reason = error === null ? 'client left before its OK' : `audit unavailable before the OK (${error.code})`;
      commands.onEnd({ reason, unanswered: reason, bytesFromClient: 0, bytesFromUpstream: 0 });
      use.finish(null);
      upstream.socket.destroy();
      if (error !== null) this.sendRefusal(error, seq + 1);
    });
  }

  private relayCommands(outcome: LoginOutcome & { accepted: true }, response: HandshakeResponse, seq: number): void {
    const { upstream: use, commands } = outcome;
    const upstream = use.connection;
    let reusable: UpstreamConnection | null = null;
    this.state = 'relaying';
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.client.off('data', this.onData);
    this.client.write(encodeMessage(encodeOk({ status: upstream.status }), seq + 1));
    this.commands = commands;
    const relay = (this.relay = new Relay(this.client, upstream, commands, {
      sessionId: this.sessionId,
      identity: commands.identity,
      deprecateEof: (response.capabilities & Capability.DEPRECATE_EOF) !== 0,
      maxClientMessageBytes: this.ctx.maxClientMessageBytes,
      log: this.ctx.log,
      drainTimeoutMs: this.ctx.drainTimeoutMs,
      onUpstreamReusable: (connection) => (reusable = connection),
      onEnd: () => {
        use.finish(reusable);
        this.finish();
      },
    }));
    relay.start(this.early, this.framer.takeRemainder());
    this.early = [];
  }

  /** A refusal the session found itself (protocol, TLS): the stages audit and log it. */
  private refuse(error: MeshgateError, seq: number, response: HandshakeResponse | null): void {
    if (this.state === 'closed') return;
    this.handler.onRefused({ sessionId: this.sessionId, peer: this.peer(), tls: this.tlsFacts, response, error });
    this.sendRefusal(error, seq);
  }

  private sendRefusal(error: MeshgateError, seq: number): void {
    if (this.state === 'closed') return;
    this.client.end(encodeMessage(encodeErr(toErrPacket(error)), seq));
    this.finish();
    // A client that never reads its error must not hold the socket open.
    setTimeout(() => this.client.destroy(), 1000).unref();
  }

  private peer(): PeerAddress {
    return { address: this.raw.remoteAddress ?? '', port: this.raw.remotePort ?? 0 };
  }
}
