/**
 * What policy has said about one Firestore call so far, message by message: every path it
 * touched (for the audit event), the operations, the rule that decided, the Google service
 * account to call Firestore as, and its place in its service class.
 */
import { mgError, type MeshgateError } from '../../errors/index.ts';
import type { Identity } from '../../identity/index.ts';
import { DEFAULT_SERVICE_CLASS, judge, type FirestoreRequest, type JudgementMarks, type TraceQueryText } from '../../policy/index.ts';
import { waitForAdmission, type Admission } from '../../throttle/index.ts';
import type { RequestFacts } from './codec/access.ts';
import type { FirestoreEngineContext } from './context.ts';

/** An event names at most this many paths; a request may touch more. */
const MAX_RECORDED_PATHS = 1000;

export class CallPolicy {
  readonly paths: string[] = [];
  operation: string | null = null;
  rule: string | null = null;
  /** The policy version that judged the call's paths, and the first dry run that matched one. */
  marks: JudgementMarks | null = null;
  /** Writes the call's messages carried. */
  writes = 0;
  serviceAccount: string | null = null;
  /** The call's place in its service class (the throttle stage), given back when it ends. */
  admission: (Admission & { admitted: true }) | null = null;
  beginsReadOnly = false;
  /**
   * What the call's span may show of its paths: the allowing rules' traceQueryText when they
   * agree (null: the tracing configuration's), `none` when they differ, so a span never shows
   * more of a path than the rule that allowed it would.
   */
  traceQueryText: TraceQueryText | null = null;
  private decided = false;
  /** How long the call waited for its service class (ms). */
  waitedMs = 0;

  constructor(
    private readonly ctx: FirestoreEngineContext,
    private readonly identity: Identity,
  ) {}

  /** Every path of the message through policy (all recorded); the first refusal, or null. */
  /**
   * Every path through policy, then the call's service class: null when it may go on, the
   * refusal, or — a class that waits and is over its limit — the promise of either.
   */
  authorize(facts: RequestFacts): MeshgateError | null | Promise<MeshgateError | null> {
    const projects = new Set([facts.database.project, ...facts.accesses.map((a) => a.database.project)]);
    projects.delete('');
    for (const project of projects) {
      if (project !== this.ctx.project) return mgError('MG_POLICY_DENIED', `meshgate serves Firestore project '${this.ctx.project}', not '${project}'`);
    }
    const policy = this.ctx.policy.current();
    const identity = this.identity;
    let refusal: MeshgateError | null = null;
    let serviceClass: string | null = null;
    for (const access of facts.accesses) {
      const request: FirestoreRequest = { engine: 'firestore', database: access.database.database, path: access.path, pathKind: access.kind, operation: access.operation };
      const { decision, marks } = judge(policy, identity, request);
      if (this.marks === null || (this.marks.dryRun === null && marks.dryRun !== null)) this.marks = marks;
      if (this.paths.length < MAX_RECORDED_PATHS) this.paths.push(access.kind === 'document' || access.path === '' ? access.path : `${access.path} (${access.kind})`);
      this.operation = mergeOperation(this.operation, access.operation);
      if (refusal !== null) continue;
      this.rule = decision.ruleId;
      if (!decision.allow) {
        const where = access.path === '' ? `database ${access.database.database}` : `${access.kind} ${access.path}`;
        refusal = mgError('MG_POLICY_DENIED', `${access.operation} of ${where} denied: ${decision.reason}`);
        continue;
      }
      this.serviceAccount ??= decision.googleServiceAccount;
      if (!this.decided) this.traceQueryText = decision.traceQueryText;
      else if (this.traceQueryText !== decision.traceQueryText) this.traceQueryText = 'none';
      this.decided = true;
      serviceClass ??= decision.serviceClass;
    }
    if (refusal !== null) return refusal;
    if (facts.transaction !== null && facts.writes > 0 && this.ctx.transactions.isReadOnly(identity.principal, facts.transaction)) {
      this.rule = null; // no rule refused it: the caller's own read-only promise did
      return mgError('MG_POLICY_DENIED', 'this transaction was begun read-only; writes in it are refused');
    }
    if (this.admission !== null) return this.taken(facts);
    const cls = serviceClass ?? DEFAULT_SERVICE_CLASS;
    const admission = waitForAdmission(this.ctx.throttle, { engine: 'firestore', kind: 'call', serviceClass: cls, principal: identity.spiffeId });
    return admission instanceof Promise ? admission.then((admitted) => this.admitted(admitted, cls, facts)) : this.admitted(admission, cls, facts);
  }

  /** The class admitted the call (or refused it): then a stream from the budget, if there is one. */
  private admitted(admission: Admission, cls: string, facts: RequestFacts): MeshgateError | null {
    if (!admission.admitted) return admission.error;
    this.waitedMs = admission.waitedMs ?? 0;
    const stream = this.ctx.streams?.tryAcquire({ serviceClass: cls }) ?? null;
    if (stream !== null && !stream.admitted) {
      admission.release();
      return stream.error;
    }
    this.admission = stream === null ? admission : { admitted: true, release: () => (admission.release(), stream.release()) };
    return this.taken(facts);
  }

  /** The message goes on: what it writes is the call's. */
  private taken(facts: RequestFacts): null {
    this.writes += facts.writes;
    this.beginsReadOnly ||= facts.beginsTransaction === 'read-only';
    return null;
  }
}

function mergeOperation(current: string | null, next: string): string {
  if (current === null || current === next) return next;
  return current.split('+').includes(next) ? current : `${current}+${next}`;
}
