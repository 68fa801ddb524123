/**
 * The contract between a session's relay (bytes) and its command stages (meaning): what the
 * relay reports, and what it is told to do with each command. The relay's unit tests hand it
 * their own handler; login-stages.ts hands it CommandStages.
 */
import type { LoginTiming, SessionRecorder } from '../../audit/index.ts';
import type { MeshgateError } from '../../errors/index.ts';
import type { Identity } from '../../identity/index.ts';
import type { CompiledPolicy, JudgementMarks, ParameterAudit, TraceQueryText } from '../../policy/index.ts';
import type { Admission } from '../../throttle/index.ts';
import type { ClientCommand, ResponseShape } from './codec/commands.ts';
import type { Frame } from './codec/framer.ts';
import type { ResponseOutcome } from './codec/response-tracker.ts';
import type { LoginRequest } from './login-stages.ts';

export interface SessionGrant {
  readonly request: LoginRequest;
  readonly identity: Identity;
  readonly role: string;
  readonly rule: string | null;
  /** The policy version that granted the session, and a dry run's verdict on it. */
  readonly marks: JudgementMarks;
  readonly serviceClass: string;
  readonly allowLocalInfile: boolean;
  /** What the audit keeps of prepared statement parameters (the deciding rule's auditParameters). */
  readonly auditParameters: ParameterAudit;
  /** What the session's spans may show of its statements (the deciding rule's traceQueryText). */
  readonly traceQueryText: TraceQueryText | null;
  readonly upstreamConnectionId: number;
  readonly audit: SessionRecorder;
  /** The session's place in its service class, given back when it ends. */
  readonly admission: Admission & { admitted: true };
  /** When each login step ran, for the connection event's subscribers (tracing). */
  readonly login?: LoginTiming;
}

/** What the relay does with a client command. */
export type Route =
  /**
   * `durable`: strict audit; go upstream only once handler.afterDurable says the intent is on disk.
   * `held`: the service class queued it; go upstream once handler.whenAdmitted says so (and, with
   * strict audit, the intent is on disk), or answer its refusal.
   */
  | { readonly kind: 'forward'; readonly bytes: Buffer; readonly response: ResponseShape; readonly durable?: true; readonly held?: true }
  /** meshgate answers with this error itself; nothing goes upstream. */
  | { readonly kind: 'answer'; readonly error: MeshgateError }
  | { readonly kind: 'quit' };

/** How a session ended, as the relay saw it. */
export interface SessionEnd {
  /** The first cause: the client closed, MariaDB closed, meshgate shut down, … */
  readonly reason: string;
  /** Why commands still in flight got no answer; each one's event says so. */
  readonly unanswered: string;
  readonly bytesFromClient: number;
  readonly bytesFromUpstream: number;
}

/** What the relay needs from the stages; the relay's unit tests hand it their own. */
export interface CommandHandler {
  readonly allowLocalInfile: boolean;
  onCommand(frame: Frame, command: ClientCommand): Route;
  onResponse(outcome: ResponseOutcome): void;
  /** The client broke the protocol; the relay closes the session after this. */
  onProtocolError(error: MeshgateError): void;
  onEnd(facts: SessionEnd): void;
  /** True while audit is behind: the relay stops reading from the client until onDrain. */
  readonly backlogged: boolean;
  onDrain(listener: () => void): void;
  /** Calls back once the audit has on disk what was recorded so far (strict), or the refusal. */
  afterDurable?(callback: (error: MeshgateError | null) => void): void;
  /** Calls back once the last command routed `held` is admitted (and durable, with strict audit), or its refusal. */
  whenAdmitted?(callback: (error: MeshgateError | null) => void): void;
  /** The last command routed 'forward' will not go upstream after all (its intent could not be written). */
  unforward?(error: MeshgateError): void;
}

/** What the session needs from an accepted login's stages: the relay's handler, plus its bracket. */
export interface SessionCommands extends CommandHandler {
  /** The session's SPIFFE ID, for log lines. */
  readonly identity: string;
  /** The client has its OK: the connection is recorded as allowed. */
  begin(): void;
  /** The client left before its OK: nothing was used, nothing is recorded. */
  abandon(): void;
  /**
   * A reloaded policy (`policy.openSessions: reevaluate`): null when it still allows the
   * session as its role (later events name the new version and rule), else why it no longer does.
   */
  redecide?(policy: CompiledPolicy): string | null;
}
