/**
 * `npm run bench:stages`: meshgate's own work per statement, without sockets, TLS or MariaDB —
 * the part of a query's CPU that a TCP or TLS relay does not have, so the part to cut.
 *
 *   frames   baseline: the client's packet framed, MariaDB's answer (a one-row text result,
 *            or the binary one of an execute) followed to its end; what any protocol-aware
 *            relay must do.
 *   stages   the same, plus every stage a statement runs through: command decoding, refusals,
 *            throttle, trace id, tag, the audit event recorded, serialized, hash-chained and
 *            appended to a real JSONL file (buffered durability, as meshgate defaults).
 *
 * Both run in this process, interleaved (MESHGATE_BENCH_REPEATS rounds, default 5, medians),
 * MESHGATE_BENCH_QUERIES each (default 100000); CPU is this process's (all threads: the
 * audit's writes run on libuv's pool). Prints one JSON line per mode: µs per query for each
 * and the difference, the statement cost meshgate adds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditRecorder } from '../src/audit/recorder.ts';
import { openJsonlAuditSink } from '../src/audit/jsonl-sink.ts';
import { CommandStages, type SessionGrant } from '../src/engines/mysql/command-stages.ts';
import { decodeCommand } from '../src/engines/mysql/codec/commands.ts';
import { Capability, Command, ServerStatus } from '../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer } from '../src/engines/mysql/codec/framer.ts';
import { ResponseTracker, type ResponseHandler } from '../src/engines/mysql/codec/response-tracker.ts';
import { PayloadWriter } from '../src/engines/mysql/codec/wire.ts';
import { SessionDirectory } from '../src/engines/mysql/directory.ts';
import type { MysqlEngineContext } from '../src/engines/mysql/context.ts';
import type { Identity } from '../src/identity/index.ts';
import { silentLogger } from '../src/log.ts';
import { admitEverything } from '../src/throttle/index.ts';
import { resultSet, wire } from '../test/helpers/mysql-responses.ts';

const QUERIES = Number(process.env.MESHGATE_BENCH_QUERIES ?? 100_000);
const REPEATS = Number(process.env.MESHGATE_BENCH_REPEATS ?? 5);
const MAX_FRAME = 1 << 24;
/** How many statements go between two turns of the event loop (the audit's timers run then). */
const PER_TURN = 32;

const identity = {
  spiffeId: 'spiffe://bench.meshgate.local/ns/bench/sa/loadgen',
  principal: 'bench.meshgate.local/ns/bench/sa/loadgen',
  trustDomain: 'bench.meshgate.local',
  namespace: 'bench',
  serviceAccount: 'loadgen',
  authMethod: 'mtls',
} as unknown as Identity;

type Mode = 'text' | 'prepared';

function clientMessage(mode: Mode, i: number): Buffer {
  if (mode === 'text') return encodeMessage(Buffer.from(`\x03SELECT id, name, qty FROM items WHERE id = ${(i % 10_000) + 1}`, 'latin1'), 0);
  // COM_STMT_EXECUTE of statement 1 with one INT parameter, new-params-bound flag set.
  const payload = new PayloadWriter().u8(Command.STMT_EXECUTE).u32(1).u8(0).u32(1).u8(0).u8(1).u8(3).u8(0).u32((i % 10_000) + 1).toBuffer();
  return encodeMessage(payload, 0);
}

function answer(mode: Mode): Buffer {
  if (mode === 'text') return wire(resultSet(['id', 'name', 'qty'], [['42', 'item-42', '7']], true, ServerStatus.AUTOCOMMIT));
  // A binary row: header 0x00, null bitmap (1 byte for 3 columns), INT, lenenc string, INT.
  const row = new PayloadWriter().u8(0).u8(0).u32(42).lenencBytes('item-42').u32(7).toBuffer();
  const packets = resultSet(['id', 'name', 'qty'], [], true, ServerStatus.AUTOCOMMIT);
  packets.splice(packets.length - 1, 0, row);
  return wire(packets);
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Framing and answer-following only. */
async function frames(mode: Mode): Promise<number> {
  const framer = new PacketFramer(MAX_FRAME);
  let answered = 0;
  const tracker = new ResponseTracker(true, { onResponse: () => answered++, onLocalInfileRequest() {}, onUnsolicited() {} });
  const reply = answer(mode);
  const started = process.cpuUsage();
  for (let i = 0; i < QUERIES; i++) {
    for (const frame of framer.push(clientMessage(mode, i))) {
      decodeCommand(frame.payload);
      tracker.expect('result', 'query');
    }
    tracker.scan(reply);
    if (i % PER_TURN === 0) await turn();
  }
  if (answered !== QUERIES) throw new Error(`frames: ${answered} answers for ${QUERIES} queries`);
  return perQuery(process.cpuUsage(started));
}

/** Every stage, the audit written to a file. */
async function stages(mode: Mode, dir: string, round: number): Promise<number> {
  const sink = await openJsonlAuditSink(join(dir, `${mode}-${round}.jsonl`), { durability: 'buffered' });
  const recorder = new AuditRecorder(sink);
  const ctx = {
    profile: { serverVersion: '5.5.5-10.11.19-MariaDB', capabilities: 0xffffffff, mariadbCapabilities: 0, charset: 45 },
    throttle: admitEverything,
    tagStatements: true,
    auditParameterBytes: 256,
    queryCacheMode: () => 'off',
    audit: recorder,
    log: silentLogger,
    policy: { current: () => { throw new Error('no policy decision is made on a point select'); } },
  } as unknown as MysqlEngineContext;
  const sessionId = `bench-${mode}-${round}`;
  const audit = recorder.openSession({ engine: 'mysql', sessionId, identity, role: 'bench_reader', rule: 'bench', policyVersion: 'v1', upstreamConnectionId: 7, startedAt: Date.now() } as never);
  const grant = {
    request: { sessionId, connectionId: 1, response: { capabilities: Capability.DEPRECATE_EOF, database: 'mgbench', username: 'loadgen', charset: 45 } },
    identity,
    role: 'bench_reader',
    rule: 'bench',
    marks: {},
    serviceClass: 'default',
    allowLocalInfile: false,
    auditParameters: 'types',
    traceQueryText: false,
    upstreamConnectionId: 7,
    audit,
    admission: { admitted: true, release() {} },
  } as unknown as SessionGrant;
  const commands = new CommandStages(ctx, new SessionDirectory(), grant);
  const handler: ResponseHandler = { onResponse: (outcome) => commands.onResponse(outcome), onLocalInfileRequest() {}, onUnsolicited() {} };
  const framer = new PacketFramer(MAX_FRAME);
  const tracker = new ResponseTracker(true, handler);
  if (mode === 'prepared') {
    // The statement the executes run, prepared as a client does first.
    for (const frame of framer.push(encodeMessage(Buffer.from('\x16SELECT id, name, qty FROM items WHERE id = ?', 'latin1'), 0))) {
      commands.onCommand(frame, decodeCommand(frame.payload));
    }
    commands.onResponse({ rowsReturned: 0, rowsAffected: 0, error: null, statementId: 1, preparedParameters: 1, status: 0, schema: undefined } as never);
  }
  const reply = answer(mode);
  let upstreamBytes = 0;
  const started = process.cpuUsage();
  for (let i = 0; i < QUERIES; i++) {
    for (const frame of framer.push(clientMessage(mode, i))) {
      const route = commands.onCommand(frame, decodeCommand(frame.payload));
      if (route.kind !== 'forward') throw new Error(`stages: the statement was not forwarded (${route.kind})`);
      upstreamBytes += route.bytes.length;
      tracker.expect(route.response, 'query');
    }
    tracker.scan(reply);
    if (i % PER_TURN === 0) await turn();
  }
  await sink.close();
  const cost = perQuery(process.cpuUsage(started));
  if (audit.statements !== QUERIES + (mode === 'prepared' ? 1 : 0)) throw new Error(`stages: ${audit.statements} statements audited for ${QUERIES} queries`);
  if (upstreamBytes === 0) throw new Error('stages: nothing went upstream');
  return cost;
}

function perQuery(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / QUERIES;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-stages-'));
try {
  for (const mode of ['text', 'prepared'] as const) {
    const base: number[] = [];
    const full: number[] = [];
    await stages(mode, dir, -1); // warm-up: JIT
    for (let round = 0; round < REPEATS; round++) {
      // Alternate which goes first, so neither always runs on a warmer machine.
      if (round % 2 === 0) {
        base.push(await frames(mode));
        full.push(await stages(mode, dir, round));
      } else {
        full.push(await stages(mode, dir, round));
        base.push(await frames(mode));
      }
    }
    const frameUs = median(base);
    const stageUs = median(full);
    const r = (x: number) => Math.round(x * 100) / 100;
    console.log(JSON.stringify({ scenario: `stages_${mode}`, queries: QUERIES, repeats: REPEATS, frames_us_per_query: r(frameUs), stages_us_per_query: r(stageUs), added_us_per_query: r(stageUs - frameUs), ratio: r(stageUs / frameUs) }));
  }
} finally {
  if (process.env.MESHGATE_BENCH_KEEP) console.log(dir); else await rm(dir, { recursive: true, force: true });
}
