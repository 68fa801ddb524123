/**
 * The stages every command of an open MySQL session runs through, reported by the relay:
 *
 *   onCommand ──▶ refuse what no session may send (replication, shutdown, …); COM_CHANGE_USER
 *                 goes as the reset it amounts to
 *             ──▶ refuse statements imitating meshgate's tag, and any that would change an account
 *             ──▶ policy again where the command changes scope (COM_INIT_DB, USE, KILL)
 *             ──▶ throttle ──▶ trace id, DEFINER, sqlcommenter tag ──▶ Route back to the relay
 *   onResponse ─▶ what the answer changed (prepared statements, database, profiling) ──▶ audit
 *                 (a COM_STMT_FETCH under the trace id of the execute that opened its cursor)
 *   onEnd ─────▶ commands still in flight are audited as `unknown`, with why; then the
 *                 session's end, exactly once
 *
 * No sockets here: the relay moves bytes, this decides what they mean.
 */
import { newSpanId, newTraceId, type TraceParent } from '../../audit/index.ts';
import { mgError, type MeshgateError } from '../../errors/index.ts';
import type { CompiledPolicy } from '../../policy/index.ts';
import { waitForAdmission, type Admission, type AdmissionRequest } from '../../throttle/index.ts';
import { MAX_DECODED_TEXT_BYTES, type ClientCommand } from './codec/commands.ts';
import { Capability, Command } from './codec/constants.ts';
import type { Frame } from './codec/framer.ts';
import type { ResponseOutcome } from './codec/response-tracker.ts';
import type { MysqlEngineContext } from './context.ts';
import type { Route, SessionCommands, SessionEnd, SessionGrant } from './command-handler.ts';
import { changeUserAsReset } from './change-user.ts';
import { translateKill, type SessionDirectory } from './directory.ts';
import { answerableByQueryCache } from './server-settings.ts';
import { databaseRefusal, redecideSession, usesRefusal } from './session-policy.ts';
import {
  accountChangeInBytes,
  extractTraceparent,
  imitatesTag,
  redactSecrets,
  serverFlavor,
  sessionEffects,
  sqlcommenterComment,
  statementVerb,
  type ServerFlavor,
  type SessionEffects,
} from './sql/index.ts';
import { upstreamBytes } from './statement-edits.ts';
import { accountRefusal } from './statement-refusals.ts';
import { auditId, PreparedStatements, type PreparedFacts } from './prepared.ts';
import { statementFacts, type CommandEnding } from './statement-facts.ts';
import { recordLater, StatementText, type StatementRecord } from './statement-text.ts';

export type { CommandHandler, Route, SessionCommands, SessionEnd, SessionGrant } from './command-handler.ts';

interface InFlight {
  readonly command: string;
  readonly code: number;
  readonly text: string | null;
  readonly verb: string | null;
  /** What the audit says of the SQL text; made when first asked for a statement past the codec's prefix. */
  readonly record: (() => StatementRecord) | null;
  /** What the statement does to the session state followed here, applied once it succeeds. */
  readonly effects: SessionEffects | null;
  /** A prepared command's facts (statement id, parameters, fetch number), made when it is recorded. */
  readonly prepared: PreparedOutcome | null;
  readonly traceId: string;
  /** The caller's span, when the trace is the caller's. */
  readonly parent: TraceParent | null;
  /** The span id the statement's tag named, which its span takes; null: none was named. */
  readonly spanId: string | null;
  /** performance.now() when it went upstream: a double, where a bigint clock would allocate per statement. */
  readonly startedMs: number;
  /** The statement's place in its service class's concurrency, given back with its answer. */
  admission: Held | null;
}

type Held = Admission & { admitted: true };

type PreparedOutcome = (answer: ResponseOutcome | null) => PreparedFacts;

/** COM_SET_OPTION's two options. https://mariadb.com/kb/en/com_set_option/ */
const MULTI_STATEMENTS_ON = 0;
const MULTI_STATEMENTS_OFF = 1;

/**
 * Commands too routine to audit one by one (they carry no SQL, read and change no data).
 * COM_STMT_FETCH is not among them: the rows a cursor returns are read by fetches.
 */
/** COM_STMT_SEND_LONG_DATA: command, statement id (4), parameter (2), then the data. */
const LONG_DATA_HEADER_BYTES = 7;

const QUIET_COMMANDS = new Set<number>([Command.PING, Command.STMT_CLOSE, Command.STMT_SEND_LONG_DATA, Command.STMT_RESET, Command.SET_OPTION, Command.STATISTICS]);

export class CommandStages implements SessionCommands {
  readonly allowLocalInfile: boolean;
  /** The session's SPIFFE ID, for log lines. */
  readonly identity: string;
  private readonly inFlight: InFlight[] = [];
  private readonly statements: PreparedStatements;
  private database: string | null;
  /** The session profiles its statements: SHOW PROFILES must list them untagged. */
  private profiling = false;
  private ended = false;
  /** The statement its service class queued, until the relay asks whenAdmitted (it reads nothing meanwhile). */
  private waiting: { readonly entry: InFlight; readonly admission: Promise<Admission> } | null = null;
  /** Everything of the tag but the per-statement trace, encoded once per session. */
  private readonly commentHead: string;
  /** The same for every statement of the session: built once, not on the hot path. */
  private readonly statementAdmission: AdmissionRequest;
  /** Whether MariaDB runs every statement of a COM_QUERY (login capability, then COM_SET_OPTION). */
  private multiStatements: boolean;
  /** Which executable comments the upstream runs. */
  private readonly server: ServerFlavor | undefined;

  constructor(
    private readonly ctx: MysqlEngineContext,
    private readonly directory: SessionDirectory,
    private readonly grant: SessionGrant,
  ) {
    this.allowLocalInfile = grant.allowLocalInfile;
    this.identity = grant.identity.spiffeId;
    this.database = grant.request.response.database;
    // The comment is pure ASCII (sqlcommenter percent-encodes the rest).
    this.commentHead = sqlcommenterComment({ meshgate_identity: grant.identity.spiffeId, meshgate_role: grant.role }).slice(0, -2);
    this.statementAdmission = Object.freeze({ engine: 'mysql', kind: 'statement', serviceClass: grant.serviceClass, principal: grant.identity.spiffeId });
    this.multiStatements = (grant.request.response.capabilities & Capability.MULTI_STATEMENTS) !== 0;
    this.server = serverFlavor(ctx.profile.serverVersion);
    this.statements = new PreparedStatements({ mode: grant.auditParameters, maxValueBytes: ctx.auditParameterBytes });
  }

  /** The client has its OK: record the allowed connection and make its id known to KILL. */
  begin(): void {
    const { request, identity, role, rule, upstreamConnectionId } = this.grant;
    this.ctx.audit.connection({
      engine: 'mysql',
      sessionId: request.sessionId,
      peer: request.peer,
      tls: request.tls,
      identity,
      clientUser: request.response.username,
      database: request.response.database,
      decision: 'allow',
      rule,
      reason: `allowed as role ${role}`,
      role,
      upstreamConnectionId,
      error: null,
      ...this.grant.marks,
      ...(this.grant.login === undefined ? {} : { login: this.grant.login }),
    });
    this.directory.add(request.connectionId, { spiffeId: identity.spiffeId, upstreamConnectionId });
  }

  redecide(policy: CompiledPolicy): string | null {
    return redecideSession(policy, this.grant, this.database);
  }

  /** The client left before its OK: nothing was used, nothing is recorded. */
  abandon(): void {
    this.ended = true;
    this.grant.admission.release();
  }

  get backlogged(): boolean {
    return this.ctx.audit.backlogged;
  }

  onDrain(listener: () => void): void {
    this.ctx.audit.onDrain(listener);
  }

  afterDurable(callback: (error: MeshgateError | null) => void): void {
    this.ctx.audit.afterDurable(callback);
  }

  /** The statement its class queued: forwarded once admitted (and durable, strict), or refused. */
  whenAdmitted(callback: (error: MeshgateError | null) => void): void {
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting === null) return callback(null);
    void waiting.admission.then((admission) => {
      if (!admission.admitted) return callback(admission.error);
      if (this.ended) return admission.release();
      waiting.entry.admission = admission;
      if (this.ctx.audit.strict) this.ctx.audit.afterDurable(callback);
      else callback(null);
    });
  }

  unforward(error: MeshgateError): void {
    const done = this.inFlight.pop();
    done?.admission?.release();
    if (done !== undefined) this.record({ ...named(done), decision: 'deny', outcome: null, durationUs: 0, refusal: error, prepared: done.prepared?.(null) ?? null, spanId: null });
  }

  onCommand(frame: Frame, command: ClientCommand): Route {
    if (command.kind === 'quit') return { kind: 'quit' };
    if (command.kind === 'forbidden') {
      const why = `${command.name} is not allowed through meshgate; connect to MariaDB directly for administration and replication`;
      return this.refuse(mgError('MG_COMMAND_FORBIDDEN', why), command.name, null);
    }
    if (command.code === Command.CHANGE_USER) {
      const { request, identity } = this.grant;
      const reset = changeUserAsReset(frame, {
        identity,
        capabilities: request.response.capabilities,
        loginCharset: request.response.charset,
        database: this.database,
        charsetOf: (collation) => this.ctx.charsetOf(collation),
      });
      if ('refusal' in reset) return this.refuse(reset.refusal, command.name, null);
      return this.forward(reset.frame, { ...command, code: Command.RESET_CONNECTION }, null, null);
    }
    if (command.code === Command.INIT_DB) {
      const refusal = databaseRefusal(this.ctx.policy.current(), this.grant, command.text ?? '');
      if (refusal !== null) return this.refuse(refusal, command.name, command.text);
    }
    let effects: SessionEffects | null = null;
    let sql: StatementText | null = null;
    if ((command.code === Command.QUERY || command.code === Command.STMT_PREPARE) && command.text !== null) {
      const statement = (sql = new StatementText(frame.payload, command.text));
      if (imitatesTag(frame.payload, command.text)) {
        const why =
          "the statement contains 'meshgate_identity' or 'meshgate_role', the keys by which MariaDB's processlist and logs name the caller; " +
          'remove that text (from comments and strings alike) and send the statement again';
        return this.refuse(mgError('MG_TAG_IMITATED', why), command.name, command.text, sql);
      }
      const change = accountChangeInBytes(statement.bytes, command.text, MAX_DECODED_TEXT_BYTES, () => statement.whole(), this.server);
      if (change !== null) return this.refuse(accountRefusal(change), command.name, command.text, sql);
      if (command.code === Command.QUERY) {
        effects = sessionEffects(command.text);
        const refusal = effects === null ? null : usesRefusal(this.ctx.policy.current(), this.grant, effects);
        if (refusal !== null) return this.refuse(refusal, command.name, command.text, sql);
      }
    }
    const route = translateKill(frame, command, this.directory, this.grant.identity.spiffeId);
    if ('refusal' in route) return this.refuse(route.refusal, command.name, command.text, sql);
    return this.forward(route.frame, command, effects, sql);
  }

  private forward(frame: Frame, command: Extract<ClientCommand, { kind: 'relay' }>, effects: SessionEffects | null, sql: StatementText | null): Route {
    const audited = command.response !== 'none' && !QUIET_COMMANDS.has(command.code);
    // Nothing goes upstream that the audit cannot record (docs/audit-durability.md).
    const unavailable = audited ? this.ctx.audit.refusal() : null;
    if (unavailable !== null) return this.refuse(unavailable, command.name, command.text, sql);
    let text = command.text;
    let record = sql === null ? null : recordLater(sql, this.ctx.auditStatementBytes, this.server);
    let traceId = '';
    let parent: TraceParent | null = null;
    let spanId: string | null = null;
    let held: Held | null = null;
    let waiting: Promise<Admission> | null = null;
    let bytes = frame.raw;
    const id = command.statementId;
    let prepared: PreparedOutcome | null = null;
    if (command.code === Command.STMT_EXECUTE || command.code === Command.STMT_BULK_EXECUTE || command.code === Command.STMT_FETCH) {
      const statement = this.statements.get(id!);
      text = statement?.text ?? null;
      record = statement?.record ?? null;
    } else if (command.code === Command.STMT_CLOSE) {
      this.statements.close(id!);
    } else if (command.code === Command.STMT_SEND_LONG_DATA && frame.payload.length >= LONG_DATA_HEADER_BYTES) {
      this.statements.longData(id!, frame.payload.readUInt16LE(5), frame.payload.length - LONG_DATA_HEADER_BYTES);
    } else if (command.code === Command.STMT_RESET) {
      this.statements.reset(id!);
    } else if (command.code === Command.STMT_PREPARE) {
      const answered = this.statements.preparing(text === null || record === null ? null : { text, record });
      prepared = (answer) => answered(answer === null || answer.error !== null ? null : { statementId: answer.statementId, parameters: answer.preparedParameters });
    } else if (command.code === Command.RESET_CONNECTION) {
      // Filled and read as commands go upstream, so cleared in that order too.
      this.statements.resetting();
    } else if (command.code === Command.SET_OPTION && frame.payload.length >= 3) {
      // MariaDB accepts both options whatever the state, so the change is known before its OK.
      const option = frame.payload.readUInt16LE(1);
      if (option === MULTI_STATEMENTS_ON) this.multiStatements = true;
      else if (option === MULTI_STATEMENTS_OFF) this.multiStatements = false;
    }
    const verb = text === null || command.code === Command.INIT_DB ? null : statementVerb(text);
    if (command.code === Command.STMT_FETCH) {
      // Part of the execute that opened the cursor, admitted then: audited under its trace.
      const cursor = this.statements.fetching(id!);
      traceId = cursor?.traceId ?? newTraceId();
      const facts: PreparedFacts = cursor?.facts ?? { statementId: auditId(id!) };
      prepared = () => facts;
    } else if (audited) {
      const admission = waitForAdmission(this.ctx.throttle, this.statementAdmission);
      if (admission instanceof Promise) waiting = admission;
      else if (!admission.admitted) return this.refuse(admission.error, command.name, text, sql);
      else held = admission;
      parent = text === null ? null : extractTraceparent(text);
      traceId = parent?.traceId ?? newTraceId();
      if (command.code === Command.STMT_EXECUTE) {
        const facts = this.statements.executing(id!, frame.payload, traceId);
        prepared = () => facts();
      } else if (command.code === Command.STMT_BULK_EXECUTE) {
        const facts: PreparedFacts = { statementId: auditId(id!) };
        prepared = () => facts;
      }
      if (sql !== null && text !== null) {
        // The audit keeps what the client sent; MariaDB gets the statement with its objects owned by the role, tagged.
        const tagged = this.ctx.tagStatements && !this.profiling;
        const mode = this.ctx.queryCacheMode();
        // A client's own traceparent is in its text already; a new one would defeat the query cache.
        const traceOf = (verbOf: string | null) => (parent !== null || answerableByQueryCache(mode, verbOf, text!) ? null : traceId);
        if (tagged && parent === null) spanId = newSpanId();
        bytes = upstreamBytes(frame, sql, {
          multiStatements: command.code === Command.QUERY && this.multiStatements,
          server: this.server,
          tag: tagged ? { commentHead: this.commentHead, trace: traceOf(verb), traceOf, ...(spanId === null ? {} : { spanId }) } : null,
        });
      }
    }
    // strict audit: the intent is on record before anything goes upstream (held or not).
    const strict = audited && this.ctx.audit.strict;
    if (strict) this.grant.audit.intent({ command: command.name, statement: text === null ? null : redactSecrets(text), traceId });
    if (command.response !== 'none') {
      const entry: InFlight = { command: command.name, code: command.code, text, verb, record, effects, prepared, traceId, parent, spanId, startedMs: performance.now(), admission: held };
      this.inFlight.push(entry);
      if (waiting !== null) {
        this.waiting = { entry, admission: waiting };
        return { kind: 'forward', bytes, response: command.response, held: true };
      }
    } else held?.release();
    return strict ? { kind: 'forward', bytes, response: command.response, durable: true } : { kind: 'forward', bytes, response: command.response };
  }

  onResponse(outcome: ResponseOutcome): void {
    const done = this.inFlight.shift();
    if (done === undefined) return;
    done.admission?.release();
    this.followSession(done, outcome);
    // The server dropped every prepared statement. Cleared here, in order with the answers
    // to COM_STMT_PREPARE that fill the map, not when the command went upstream.
    if (done.code === Command.RESET_CONNECTION && outcome.error === null) this.statements.cleared();
    const prepared = done.prepared?.(outcome) ?? null;
    if (QUIET_COMMANDS.has(done.code)) return;
    const { command, text, verb, traceId, parent, spanId } = done;
    const throttleWaitMs = done.admission?.waitedMs ?? 0;
    this.record({ command, text, verb, traceId, parent, spanId, decision: 'allow', outcome, durationUs: durationOf(done), refusal: null, sql: done.record?.() ?? null, prepared, throttleWaitMs });
  }

  /**
   * The database and profiling state after a command. MariaDB's session tracking says which
   * database is current whenever it changes; clients that do not take session tracking (it
   * is negotiated per connection) leave meshgate to read their USE statements, which take
   * effect only when the whole text ran without error.
   */
  private followSession(done: InFlight, outcome: ResponseOutcome): void {
    if (outcome.schema !== undefined) this.database = outcome.schema === '' ? null : outcome.schema;
    else if (done.code === Command.INIT_DB && outcome.error === null) this.database = done.text;
    else if (done.effects !== null && outcome.error === null && done.effects.uses.length > 0) this.database = done.effects.uses.at(-1)!;
    if (done.effects?.profiling != null && outcome.error === null) this.profiling = done.effects.profiling;
    if (done.code === Command.RESET_CONNECTION && outcome.error === null) this.profiling = false;
  }

  onProtocolError(error: MeshgateError): void {
    this.record({ command: 'protocol', text: null, verb: null, traceId: newTraceId(), decision: 'deny', outcome: null, durationUs: 0, refusal: error, sql: null });
  }

  onEnd(facts: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    // Sent upstream, answer never seen: recorded, and said to be unknown rather than left out.
    const due = this.inFlight.splice(0);
    for (const entry of due) entry.admission?.release();
    const unanswered = due.filter((entry) => !QUIET_COMMANDS.has(entry.code));
    const upstreamId = this.grant.upstreamConnectionId;
    if (unanswered.length > 0) {
      const fields = { sessionId: this.grant.request.sessionId, identity: this.identity, upstreamConnectionId: upstreamId, why: facts.unanswered };
      this.ctx.log.warn(`${unanswered.length} MySQL statement(s) ended without an answer; audited with outcome unknown`, fields);
    }
    for (const due of unanswered) {
      const where = `look for its trace id ${due.traceId || '(none)'} and upstream connection ${upstreamId} in MariaDB's logs`;
      const unknown = mgError('MG_OUTCOME_UNKNOWN', `${facts.unanswered}: the statement may or may not have taken effect; ${where}`);
      this.record({ ...named(due), decision: 'allow', outcome: 'unknown', durationUs: durationOf(due), refusal: unknown, prepared: due.prepared?.(null) ?? null });
    }
    this.grant.audit.end({ reason: facts.reason, bytesFromClient: facts.bytesFromClient, bytesFromUpstream: facts.bytesFromUpstream });
    this.grant.admission.release();
    this.directory.remove(this.grant.request.connectionId);
  }

  private refuse(error: MeshgateError, command: string, text: string | null, sql: StatementText | null = null): Route {
    const verb = text === null || command === 'init_db' ? null : statementVerb(text);
    // A refused statement is still part of its caller's trace.
    const carried = text === null ? null : extractTraceparent(text);
    const record = sql === null ? null : recordLater(sql, this.ctx.auditStatementBytes, this.server)();
    this.record({ command, text, verb, traceId: carried?.traceId ?? newTraceId(), decision: 'deny', outcome: null, durationUs: 0, refusal: error, sql: record, parent: carried });
    return { kind: 'answer', error };
  }

  private record(ending: CommandEnding): void {
    this.grant.audit.statement(statementFacts(ending, this.database, this.grant.traceQueryText));
  }
}

/** What every record of an in-flight command says alike. */
function named(entry: InFlight): Pick<CommandEnding, 'command' | 'text' | 'verb' | 'traceId' | 'sql' | 'parent' | 'spanId'> {
  return { command: entry.command, text: entry.text, verb: entry.verb, traceId: entry.traceId, sql: entry.record?.() ?? null, parent: entry.parent, spanId: entry.spanId };
}

function durationOf(command: InFlight): number {
  return Math.floor((performance.now() - command.startedMs) * 1000);
}
