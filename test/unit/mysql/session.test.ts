/**
 * The session on its own, over in-memory socket pairs: it speaks the connection phase and
 * reports the login to a handler; it decides nothing itself. A stand-in handler accepts or
 * refuses; a stand-in MariaDB answers. (TLS and real identities: test/integration/mysql.)
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { describe, it } from 'node:test';
import { mgError, type MeshgateError } from '../../../src/errors/index.ts';
import { silentLogger } from '../../../src/log.ts';
import type { SessionCommands, Route } from '../../../src/engines/mysql/command-stages.ts';
import { Capability, Command } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer, type Frame } from '../../../src/engines/mysql/codec/framer.ts';
import { decodeErr, encodeOk } from '../../../src/engines/mysql/codec/generic.ts';
import { decodeGreeting, encodeHandshakeResponse } from '../../../src/engines/mysql/codec/handshake.ts';
import type { LoginHandler, LoginOutcome, LoginRequest, RefusedLogin } from '../../../src/engines/mysql/login-stages.ts';
import { MysqlSession, type SessionSettings } from '../../../src/engines/mysql/session.ts';
import type { UpstreamConnection } from '../../../src/engines/mysql/upstream.ts';
import { duplexPair, type MemorySocket } from '../../helpers/duplex-pair.ts';

const CLIENT_CAPS = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.CONNECT_WITH_DB | Capability.DEPRECATE_EOF | Capability.CLIENT_MYSQL;
const settings = (over: Partial<SessionSettings> = {}): SessionSettings => ({
  profile: { serverVersion: '11.4.2-MariaDB', capabilities: 0xffffffff, mariadbCapabilities: 0, charset: 45 },
  tlsRequired: false,
  tlsMode: 'starttls',
  secureContext: () => createSecureContext({}),
  maxClientMessageBytes: 1 << 20,
  log: silentLogger,
  handshakeTimeoutMs: 10_000,
  drainTimeoutMs: 1000,
  ...over,
});
const handshake = (database: string | null, capabilities = CLIENT_CAPS) =>
  encodeMessage(
    encodeHandshakeResponse({
      capabilities,
      mariadbCapabilities: 0,
      maxPacketSize: 1 << 24,
      charset: 45,
      username: 'app',
      authResponse: Buffer.alloc(0),
      database,
      authPlugin: 'mysql_native_password',
      attributes: new Map(),
    }),
    1,
  );
const query = (sql: string) => encodeMessage(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql)]), 0);
const tick = () => new Promise((resolve) => setImmediate(resolve));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await tick();
  assert.ok(condition(), `timed out waiting for: ${what}`);
}
const packets = (socket: MemorySocket): Frame[] => new PacketFramer(1 << 24).push(socket.all());

/** Commands that forward everything and count what the session tells them. */
function commands(log: string[]): SessionCommands {
  return {
    identity: 'spiffe://test/ns/shop/sa/app',
    allowLocalInfile: false,
    backlogged: false,
    begin: () => log.push('begin'),
    abandon: () => log.push('abandon'),
    onCommand: (frame, command): Route => {
      log.push(`command ${command.kind === 'relay' ? command.text : command.kind}`);
      return command.kind === 'quit' ? { kind: 'quit' } : { kind: 'forward', bytes: frame.raw, response: 'result' };
    },
    onResponse: () => log.push('response'),
    onProtocolError: () => log.push('protocol error'),
    onEnd: (facts) => log.push(`end: ${facts.reason}`),
    onDrain: (listener) => queueMicrotask(listener),
  };
}

class StandInHandler implements LoginHandler {
  readonly logins: LoginRequest[] = [];
  readonly refusals: RefusedLogin[] = [];
  readonly log: string[] = [];
  mariadb: MemorySocket | null = null;
  constructor(private readonly decide: (request: LoginRequest) => MeshgateError | null) {}

  wantsToken(): boolean {
    return false;
  }
  async onLogin(request: LoginRequest): Promise<LoginOutcome> {
    this.logins.push(request);
    const refusal = this.decide(request);
    if (refusal !== null) {
      this.onRefused({ sessionId: request.sessionId, peer: request.peer, tls: request.tls, response: request.response, error: refusal });
      return { accepted: false, error: refusal };
    }
    const [mariadb, upstreamSide] = duplexPair();
    this.mariadb = mariadb;
    const connection: UpstreamConnection = { socket: upstreamSide as unknown as Socket, greeting: {} as UpstreamConnection['greeting'], connectionId: 99, status: 2, leftover: null };
    return { accepted: true, upstream: { connection, account: { user: 'u', password: 'p', leaseId: null }, finish: () => this.log.push('upstream finished') }, commands: commands(this.log) };
  }
  onRefused(refusal: RefusedLogin): void {
    this.refusals.push(refusal);
  }
}

function open(handler: StandInHandler, over: Partial<SessionSettings> = {}) {
  const [client, serverSide] = duplexPair();
  let closed = 0;
  const session = new MysqlSession(serverSide, settings(over), handler, 'sess-1', () => closed++);
  session.start();
  return { client, session, closed: () => closed };
}

describe('MySQL session (in memory)', () => {
  it('greets with the upstream profile and offers TLS', async () => {
    const { client } = open(new StandInHandler(() => null));
    await until(() => packets(client).length === 1, 'the greeting');
    const greeting = decodeGreeting(packets(client)[0]!.payload);
    assert.equal(greeting.serverVersion, '11.4.2-MariaDB');
    assert.ok(greeting.capabilities & Capability.SSL, 'CLIENT_SSL offered');
  });

  it('reports the login with what the client asked for, and relays once the handler accepts', async () => {
    const handler = new StandInHandler(() => null);
    const { client } = open(handler);
    await until(() => packets(client).length === 1, 'the greeting');
    // A command pipelined right behind the login waits for the relay.
    client.write(Buffer.concat([handshake('shop'), query('SELECT 1')]));
    await until(() => handler.mariadb !== null && packets(handler.mariadb).length === 1, 'the statement upstream');
    assert.equal(handler.logins.length, 1);
    assert.equal(handler.logins[0]!.response.database, 'shop');
    assert.equal(handler.logins[0]!.response.username, 'app');
    assert.equal(handler.logins[0]!.token, null);
    assert.equal(packets(client)[1]!.payload[0], 0x00, 'the client got its OK');
    assert.deepEqual(handler.log, ['begin', 'command SELECT 1']);
    handler.mariadb!.write(encodeMessage(encodeOk({ affectedRows: 3 }), 1));
    await until(() => packets(client).length === 3, 'the answer at the client');
  });

  it('a refusal from the handler is an ERR packet with its code, and the session closes', async () => {
    const handler = new StandInHandler(() => mgError('MG_POLICY_DENIED', 'no ALLOW rule matches'));
    const { client, closed } = open(handler);
    await until(() => packets(client).length === 1, 'the greeting');
    client.write(handshake('shop'));
    await until(() => packets(client).length === 2, 'the refusal');
    const err = decodeErr(packets(client)[1]!.payload);
    assert.match(err.message, /MG_POLICY_DENIED.*no ALLOW rule matches/);
    assert.equal(packets(client)[1]!.seq, 2, 'in sequence after the handshake response');
    await until(() => closed() === 1, 'the session closed');
  });

  it('refuses plain TCP when TLS is required, and tells the handler so it is audited', async () => {
    const handler = new StandInHandler(() => null);
    const { client } = open(handler, { tlsRequired: true });
    await until(() => packets(client).length === 1, 'the greeting');
    client.write(handshake(null));
    await until(() => packets(client).length === 2, 'the refusal');
    assert.match(decodeErr(packets(client)[1]!.payload).message, /MG_TLS_REQUIRED/);
    assert.equal(handler.logins.length, 0, 'no login reached the stages');
    assert.equal(handler.refusals[0]?.error.code, 'MG_TLS_REQUIRED');
  });

  it('a malformed handshake response closes this session with MG_PACKET_MALFORMED', async () => {
    const handler = new StandInHandler(() => null);
    const { client, closed } = open(handler);
    await until(() => packets(client).length === 1, 'the greeting');
    client.write(encodeMessage(Buffer.from([0x01, 0x02, 0x03]), 1));
    await until(() => packets(client).length === 2, 'the refusal');
    assert.match(decodeErr(packets(client)[1]!.payload).message, /MG_PACKET_MALFORMED/);
    assert.equal(handler.refusals[0]?.error.code, 'MG_PACKET_MALFORMED');
    await until(() => closed() === 1, 'the session closed');
  });

  it('a client that leaves while the stages run: its accepted login is abandoned, nothing relayed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handler = new StandInHandler(() => null);
    const slow: StandInHandler = Object.assign(Object.create(StandInHandler.prototype) as StandInHandler, handler, {
      onLogin: async (request: LoginRequest) => {
        await gate;
        return StandInHandler.prototype.onLogin.call(handler, request);
      },
    });
    const { client, closed } = open(slow);
    await until(() => packets(client).length === 1, 'the greeting');
    client.write(handshake('shop'));
    await tick();
    client.destroy();
    await until(() => closed() === 1, 'the session closed');
    release();
    await until(() => handler.log.includes('abandon'), 'the login abandoned');
    assert.deepEqual(handler.log, ['abandon', 'upstream finished']);
  });
});
