/**
 * Throttle refusals: one error type carrying what metrics and audit need (class, limit,
 * when to retry), with a message that names the class, the limit and the fix.
 */
import { MeshgateError, type ErrorCode } from '../errors/index.ts';

/** Which limit refused: metric label values, stable. */
export type ThrottleLimit =
  | 'rate'
  | 'concurrency'
  | 'sessions'
  | 'identity-rate'
  | 'identity-concurrency'
  | 'identity-sessions'
  | 'logins'
  | 'identity-logins'
  | 'queue'
  | 'timeout'
  | 'cancelled'
  | 'upstream-connections'
  | 'upstream-role'
  | 'upstream-streams';

export class ThrottledError extends MeshgateError {
  readonly serviceClass: string;
  readonly limit: ThrottleLimit;
  /** When a retry can succeed, where the limit knows (a rate); null for slots held by others. */
  readonly retryAfterMs: number | null;

  constructor(code: ErrorCode, message: string, serviceClass: string, limit: ThrottleLimit, retryAfterMs: number | null) {
    super(code, message);
    this.name = 'ThrottledError';
    this.serviceClass = serviceClass;
    this.limit = limit;
    this.retryAfterMs = retryAfterMs === null ? null : Math.max(1, Math.ceil(retryAfterMs));
  }
}

export function isThrottledError(value: unknown): value is ThrottledError {
  return value instanceof ThrottledError;
}

export type AdmissionKind = 'session' | 'statement' | 'call' | 'credential';

export interface LimitFacts {
  readonly serviceClass: string;
  readonly kind: AdmissionKind;
  readonly limit: ThrottleLimit;
  /** The configured value of the limit that was hit (a rate: per second). */
  readonly value: number;
  readonly burst?: number;
  readonly queue?: number;
  readonly timeoutMs?: number;
  readonly retryAfterMs: number | null;
}

const noun = (kind: AdmissionKind) => (kind === 'call' ? 'calls' : kind === 'session' ? 'sessions' : kind === 'credential' ? 'credentials' : 'statements');

/** The refusal for a limit hit, worded for the caller and the operator alike. */
export function throttleRefusal(facts: LimitFacts): ThrottledError {
  const { serviceClass: cls, limit, value } = facts;
  const field = `throttle.classes.${cls}`;
  const retry = facts.retryAfterMs === null ? '' : `retry in ${Math.max(1, Math.ceil(facts.retryAfterMs))} ms, `;
  let message: string;
  let code: ErrorCode = 'MG_THROTTLED';
  switch (limit) {
    case 'rate':
    case 'identity-rate': {
      const who = limit === 'rate' ? `service class "${cls}"` : `this identity in service class "${cls}"`;
      const at = limit === 'rate' ? `${field}.rate` : `${field}.perIdentity.rate`;
      message = `${who} is over its rate of ${value} ${noun(facts.kind)}/s (burst ${facts.burst ?? value}): ${retry}spread the load, or raise ${at}`;
      break;
    }
    case 'logins':
    case 'identity-logins': {
      const who = limit === 'logins' ? `service class "${cls}"` : `this identity in service class "${cls}"`;
      const at = limit === 'logins' ? `${field}.logins` : `${field}.perIdentity.logins`;
      message = `${who} is over its rate of ${value} logins/s (burst ${facts.burst ?? value}): ${retry}reuse connections (a pool) instead of reconnecting, or raise ${at}`;
      break;
    }
    case 'concurrency':
    case 'identity-concurrency':
    case 'sessions':
    case 'identity-sessions': {
      const own = limit.startsWith('identity-');
      const key = own ? limit.slice('identity-'.length) : limit;
      const what = key === 'sessions' ? 'open sessions' : `in-flight ${noun(facts.kind)}`;
      const who = own ? `this identity in service class "${cls}"` : `service class "${cls}"`;
      const finish = key === 'sessions' ? 'close idle sessions (or pool them)' : `wait for ${own ? 'its' : 'the class\'s'} ${noun(facts.kind)} to finish`;
      message = `${who} holds its limit of ${value} ${what}: ${finish}, or raise ${field}${own ? '.perIdentity' : ''}.${key}`;
      break;
    }
    case 'queue':
      message = `service class "${cls}" is over its limits and its wait queue is full (${facts.queue ?? value} waiting): ${retry}retry later, or raise ${field}.overLimit.wait.queue`;
      break;
    case 'timeout':
      code = 'MG_THROTTLE_TIMEOUT';
      message = `waited ${facts.timeoutMs ?? value} ms in service class "${cls}"'s queue without being admitted: the class is saturated; retry later, or raise its limits or ${field}.overLimit.wait.timeout`;
      break;
    case 'cancelled':
      message = `stopped waiting in service class "${cls}"'s queue: the caller went away`;
      break;
    case 'upstream-connections':
      code = 'MG_UPSTREAM_BUSY';
      message = `no upstream connection is free for service class "${cls}" (budget ${value}, what is left is reserved for other classes): close idle sessions, or raise throttle.upstream.connections or throttle.upstream.reserved.${cls}`;
      break;
    case 'upstream-streams':
      code = 'MG_UPSTREAM_BUSY';
      message = `no Firestore stream is free for service class "${cls}" (budget ${value} concurrent calls, what is left is reserved for other classes): retry later, or raise throttle.firestore.streams or throttle.firestore.reserved.${cls}`;
      break;
    case 'upstream-role':
      code = 'MG_UPSTREAM_BUSY';
      message = `the role's upstream connections are all in use (cap ${value}) for service class "${cls}": close idle sessions, or raise its cap under throttle.upstream.roles`;
      break;
  }
  return new ThrottledError(code, message, cls, limit, facts.retryAfterMs);
}
