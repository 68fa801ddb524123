/**
 * The relay on its own, over in-memory socket pairs: a stand-in client, a stand-in MariaDB
 * and a stand-in handler. What it must get right is order and flow — every command reported
 * before it goes upstream, every answer reported in order, a local answer never overtaking
 * an upstream answer due before it, no reading while the handler's audit is behind, and one
 * end, however the session ends.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { mgError, type MeshgateError } from '../../../src/errors/index.ts';
import { silentLogger, type Logger } from '../../../src/log.ts';
import type { CommandHandler, Route } from '../../../src/engines/mysql/command-stages.ts';
import { Command } from '../../../src/engines/mysql/codec/constants.ts';
import type { ClientCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { encodeMessage, PacketFramer, type Frame } from '../../../src/engines/mysql/codec/framer.ts';
import { decodeErr, encodeOk } from '../../../src/engines/mysql/codec/generic.ts';
import type { ResponseOutcome } from '../../../src/engines/mysql/codec/response-tracker.ts';
import { Relay } from '../../../src/engines/mysql/relay.ts';
import type { UpstreamConnection } from '../../../src/engines/mysql/upstream.ts';
import { duplexPair, type MemorySocket } from '../../helpers/duplex-pair.ts';
import { captureLog } from '../../helpers/log.ts';

const query = (sql: string, seq = 0) => encodeMessage(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql)]), seq);
const quit = () => encodeMessage(Buffer.from([Command.QUIT]), 0);
const ok = (affectedRows: number, seq = 1) => encodeMessage(encodeOk({ affectedRows }), seq);
const tick = () => new Promise((resolve) => setImmediate(resolve));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await tick();
  assert.ok(condition(), `timed out waiting for: ${what}`);
}

/** A handler that records what the relay reports and routes by a rule the test gives. */
class RecordingHandler implements CommandHandler {
  readonly allowLocalInfile = false;
  readonly commands: string[] = [];
  readonly responses: ResponseOutcome[] = [];
  readonly protocolErrors: MeshgateError[] = [];
  readonly ends: string[] = [];
  /** Why commands still due at each end got no answer. */
  readonly unanswered: string[] = [];
  allowLocalInfileAnyway = false;
  backlogged = false;
  private drains: (() => void)[] = [];
  constructor(private readonly route: (text: string | null, frame: Frame) => Route = (_text, frame) => ({ kind: 'forward', bytes: frame.raw, response: 'result' })) {}

  onCommand(frame: Frame, command: ClientCommand): Route {
    if (command.kind === 'quit') return { kind: 'quit' };
    const text = command.kind === 'relay' ? command.text : null;
    this.commands.push(text ?? `#${command.code}`);
    return this.route(text, frame);
  }
  onResponse(outcome: ResponseOutcome): void {
    this.responses.push(outcome);
  }
  onProtocolError(error: MeshgateError): void {
    this.protocolErrors.push(error);
  }
  onEnd(facts: { reason: string; unanswered: string }): void {
    this.ends.push(facts.reason);
    this.unanswered.push(facts.unanswered);
  }
  onDrain(listener: () => void): void {
    this.drains.push(listener);
  }
  drain(): void {
    this.backlogged = false;
    for (const listener of this.drains.splice(0)) listener();
  }
}

function open(handler: RecordingHandler, options: { maxClientMessageBytes?: number; reusable?: boolean; log?: Logger; drainTimeoutMs?: number } = {}) {
  const [client, clientSide] = duplexPair();
  const [mariadb, upstreamSide] = duplexPair();
  const connection: UpstreamConnection = { socket: upstreamSide as unknown as Socket, greeting: {} as UpstreamConnection['greeting'], connectionId: 7, status: 2, leftover: null };
  const result = { ended: 0, reused: null as UpstreamConnection | null };
  const relay = new Relay(clientSide, connection, handler, {
    sessionId: 's1',
    identity: 'spiffe://test/ns/a/sa/b',
    deprecateEof: true,
    maxClientMessageBytes: options.maxClientMessageBytes ?? 1 << 20,
    log: options.log ?? silentLogger,
    drainTimeoutMs: options.drainTimeoutMs ?? 5000,
    onEnd: () => result.ended++,
    ...(options.reusable === true ? { onUpstreamReusable: (c: UpstreamConnection) => (result.reused = c) } : {}),
  });
  relay.start([], null);
  return { client, mariadb, relay, result };
}

/** The packets a stream has received so far. */
function packets(socket: MemorySocket): Frame[] {
  return new PacketFramer(1 << 24).push(socket.all());
}

describe('relay (in memory)', () => {
  it('reports each command before forwarding it, and each answer in order', async () => {
    const handler = new RecordingHandler();
    const { client, mariadb } = open(handler);
    client.write(Buffer.concat([query('SELECT 1'), query('SELECT 2')]));
    await until(() => packets(mariadb).length === 2, 'both statements upstream');
    assert.deepEqual(handler.commands, ['SELECT 1', 'SELECT 2']);
    mariadb.write(Buffer.concat([ok(1), ok(2)]));
    await until(() => handler.responses.length === 2, 'both answers reported');
    assert.deepEqual(handler.responses.map((r) => r.rowsAffected), [1, 2]);
    await until(() => packets(client).length === 2, 'the client got both answers');
  });

  it('forwards what the handler routes, not what the client sent (a rewritten statement)', async () => {
    const handler = new RecordingHandler(() => ({ kind: 'forward', bytes: query('SELECT 1 /*tag*/'), response: 'result' }));
    const { client, mariadb } = open(handler);
    client.write(query('SELECT 1'));
    await until(() => packets(mariadb).length === 1, 'the statement upstream');
    assert.equal(packets(mariadb)[0]!.payload.subarray(1).toString(), 'SELECT 1 /*tag*/');
  });

  it('a local answer waits for the upstream answers due before it', async () => {
    const refusal = mgError('MG_COMMAND_FORBIDDEN', 'not through meshgate');
    const handler = new RecordingHandler((text, frame) => (text === 'DENIED' ? { kind: 'answer', error: refusal } : { kind: 'forward', bytes: frame.raw, response: 'result' }));
    const { client, mariadb } = open(handler);
    client.write(Buffer.concat([query('SELECT 1'), query('DENIED')]));
    await until(() => handler.commands.length === 2, 'both commands reported');
    await tick();
    assert.equal(packets(client).length, 0, 'nothing answered before MariaDB answered the first');
    mariadb.write(ok(1));
    await until(() => packets(client).length === 2, 'both answers at the client');
    const [first, second] = packets(client);
    assert.equal(first!.payload[0], 0x00, 'the OK first');
    assert.match(decodeErr(second!.payload).message, /MG_COMMAND_FORBIDDEN|not through meshgate/);
    assert.equal(packets(mariadb).length, 1, 'the refused command never went upstream');
  });

  it('reads nothing more from the client while the handler is backlogged, and resumes on drain', async () => {
    const handler = new RecordingHandler();
    const { client, mariadb } = open(handler);
    handler.backlogged = true;
    client.write(query('SELECT 1'));
    await until(() => handler.commands.length === 1, 'the first command');
    client.write(query('SELECT 2'));
    for (let i = 0; i < 20; i++) await tick();
    assert.deepEqual(handler.commands, ['SELECT 1'], 'the second waits while audit is behind');
    handler.drain();
    await until(() => handler.commands.length === 2, 'the second after the drain');
    await until(() => packets(mariadb).length === 2, 'both upstream');
  });

  it('an oversized message is a protocol error: reported, answered with an error, and the session ends once', async () => {
    const handler = new RecordingHandler();
    const { client, result } = open(handler, { maxClientMessageBytes: 1024 });
    client.write(query('x'.repeat(4096)));
    await until(() => result.ended === 1, 'the end');
    assert.equal(handler.protocolErrors[0]?.code, 'MG_PACKET_TOO_LARGE');
    assert.equal(handler.ends.length, 1);
    await until(() => packets(client).length === 1, 'the error at the client');
    assert.equal(packets(client)[0]!.payload[0], 0xff);
  });

  it('COM_QUIT between commands hands the upstream connection back for reuse', async () => {
    const handler = new RecordingHandler();
    const { client, mariadb, result } = open(handler, { reusable: true });
    client.write(query('SELECT 1'));
    await until(() => packets(mariadb).length === 1, 'the statement');
    mariadb.write(ok(0));
    await until(() => handler.responses.length === 1, 'its answer');
    client.write(quit());
    await until(() => result.ended === 1, 'the end');
    assert.equal(result.reused?.connectionId, 7);
    assert.deepEqual(handler.ends, ['client quit']);
  });

  it('a client that leaves mid-answer never hands its upstream connection back', async () => {
    const handler = new RecordingHandler();
    const { client, mariadb, result } = open(handler, { reusable: true });
    client.write(query('SELECT SLEEP(1)'));
    await until(() => packets(mariadb).length === 1, 'the statement');
    client.destroy();
    // The session waits for the answer due (so its audit event says what MariaDB did).
    await until(() => client.destroyed, 'the client gone');
    mariadb.write(ok(0));
    await until(() => result.ended === 1, 'the end');
    assert.equal(result.reused, null);
    assert.deepEqual(handler.ends, ['client closed the connection']);
  });

  it('an answer that cannot be followed ends the session once, naming the command and the packet', async () => {
    const handler = new RecordingHandler((_text, frame) => ({ kind: 'forward', bytes: frame.raw, response: 'prepare' }));
    const capture = captureLog();
    const { client, mariadb, result } = open(handler, { log: capture.log });
    client.write(encodeMessage(Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from('SELECT 1')]), 0));
    await until(() => packets(mariadb).length === 1, 'the prepare upstream');
    mariadb.write(ok(0));
    await until(() => result.ended === 1, 'the end');
    assert.deepEqual(handler.ends, ['upstream protocol error (MG_UPSTREAM_PROTOCOL)']);
    assert.match(capture.text(), /MG_UPSTREAM_PROTOCOL.*an OK packet of 7 byte\(s\) in the answer to prepare where meshgate expected COM_STMT_PREPARE_OK/);
  });

  it('MariaDB closing the connection ends the session once, saying so', async () => {
    const handler = new RecordingHandler();
    const { mariadb, result } = open(handler);
    mariadb.end();
    await until(() => result.ended === 1, 'the end');
    assert.deepEqual(handler.ends, ['upstream closed the connection']);
  });

  describe('a session that ends with answers due (issue 12: one event per forwarded statement)', () => {
    const infileRequest = (seq = 1) => encodeMessage(Buffer.concat([Buffer.from([0xfb]), Buffer.from('/etc/passwd')]), seq);

    it('the client leaves mid-statement: MariaDB’s answer is still read and reported, then the session ends', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, result } = open(handler);
      client.write(query('INSERT 1'));
      await until(() => packets(mariadb).length === 1, 'the statement upstream');
      client.destroy();
      for (let i = 0; i < 20; i++) await tick();
      assert.equal(result.ended, 0, 'not ended while MariaDB owes an answer');
      mariadb.write(ok(1));
      await until(() => result.ended === 1, 'the end');
      assert.deepEqual(handler.responses.map((r) => r.rowsAffected), [1]);
      assert.deepEqual(handler.ends, ['client closed the connection']);
    });

    it('the client leaves and MariaDB does not answer within the drain bound: ended, the command unanswered, saying why', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, result } = open(handler, { drainTimeoutMs: 50 });
      client.write(query('SELECT SLEEP(60)'));
      await until(() => packets(mariadb).length === 1, 'the statement upstream');
      client.destroy();
      await new Promise((resolve) => setTimeout(resolve, 120));
      assert.equal(result.ended, 1);
      assert.equal(handler.responses.length, 0);
      assert.deepEqual(handler.ends, ['client closed the connection']);
      assert.match(handler.unanswered[0]!, /client closed the connection, and MariaDB had not answered within 0\.05 s/);
      assert.ok(mariadb.destroyed || mariadb.readableEnded, 'the upstream connection is let go');
    });

    it('MariaDB closes after the client left: the end keeps the first cause, the unanswered say MariaDB closed', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, result } = open(handler);
      client.write(query('SELECT SLEEP(60)'));
      await until(() => packets(mariadb).length === 1, 'the statement upstream');
      client.destroy();
      await until(() => client.destroyed, 'the client gone');
      mariadb.end();
      await until(() => result.ended === 1, 'the end');
      assert.deepEqual(handler.ends, ['client closed the connection']);
      assert.match(handler.unanswered[0]!, /upstream closed the connection before MariaDB's answer came/);
    });

    it('audit behind, a statement waiting in the backlog, the client leaves: it still goes upstream once audit catches up, and is answered', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, result } = open(handler);
      handler.backlogged = true;
      // One read holding both: the second waits in the relay's backlog while audit is behind.
      client.write(Buffer.concat([query('INSERT 1'), query('INSERT 2')]));
      await until(() => handler.commands.length === 1, 'the first command');
      client.destroy();
      for (let i = 0; i < 20; i++) await tick();
      assert.deepEqual(handler.commands, ['INSERT 1'], 'the second waits for audit');
      handler.drain();
      await until(() => packets(mariadb).length === 2, 'both upstream after the drain');
      mariadb.write(Buffer.concat([ok(1), ok(1)]));
      await until(() => result.ended === 1, 'the end');
      assert.equal(handler.responses.length, 2);
      assert.deepEqual(handler.ends, ['client closed the connection']);
    });

    it('MariaDB asks for a local file the session may not send: the session ends, the statement unanswered, naming the file request', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, result } = open(handler);
      client.write(query('SELECT 1'));
      await until(() => packets(mariadb).length === 1, 'the statement upstream');
      mariadb.write(infileRequest());
      await until(() => result.ended === 1, 'the end');
      assert.deepEqual(handler.ends, ['upstream requested a local file']);
      assert.match(handler.unanswered[0]!, /local file/);
    });

    it('shutdown with an answer due: the answer still reaches the client, nothing new goes upstream, then the end', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, relay, result } = open(handler);
      client.write(query('INSERT 1'));
      await until(() => packets(mariadb).length === 1, 'the statement upstream');
      relay.stop('meshgate shut down');
      client.write(query('INSERT 2'));
      for (let i = 0; i < 20; i++) await tick();
      assert.equal(result.ended, 0);
      mariadb.write(ok(1));
      await until(() => result.ended === 1, 'the end');
      await until(() => packets(client).length === 1, 'the OK at the client');
      assert.equal(packets(client)[0]?.payload[0], 0x00, 'the client got its OK');
      await until(() => packets(mariadb).length === 2, 'the quit upstream');
      const upstream = packets(mariadb).map((p) => p.payload);
      assert.equal(upstream[0]!.subarray(1).toString(), 'INSERT 1');
      assert.deepEqual([...upstream[1]!], [Command.QUIT], 'then a clean COM_QUIT: the command sent after the stop never went upstream');
      assert.deepEqual(handler.commands, ['INSERT 1']);
      assert.deepEqual(handler.ends, ['meshgate shut down']);
    });

    it('COM_QUIT behind a statement still due: the answer is read and reaches the client, then the session ends as a quit', async () => {
      const handler = new RecordingHandler();
      const { client, mariadb, result } = open(handler, { reusable: true });
      client.write(Buffer.concat([query('INSERT 1'), quit()]));
      await until(() => packets(mariadb).length === 2, 'the statement and the quit upstream');
      mariadb.write(ok(1));
      await until(() => result.ended === 1, 'the end');
      assert.equal(handler.responses.length, 1);
      await until(() => packets(client).length === 1, 'the OK at the client');
      assert.equal(packets(client)[0]?.payload[0], 0x00);
      assert.equal(result.reused, null);
      assert.deepEqual(handler.ends, ['client quit']);
    });
  });
});
