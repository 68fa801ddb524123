/**
 * The throttle stage: between policy and upstream, every session, statement and call asks
 * to be admitted for its service class (the policy decision names it). Today every request
 * is admitted; limits per class (rate, concurrency, sessions, upstream connections, local or
 * shared through Redis) plug in here without touching an engine.
 */
import type { MeshgateError } from '../errors/index.ts';

export interface AdmissionRequest {
  readonly engine: 'mysql' | 'firestore';
  /** What is asking: a new session, one statement of a session, one gRPC call. */
  readonly kind: 'session' | 'statement' | 'call';
  readonly serviceClass: string;
  /** The caller, for per-identity limits (its SPIFFE ID). */
  readonly principal: string;
}

export type Admission =
  | { readonly admitted: true; /** Gives back what was taken (a concurrency slot); once. */ release(): void }
  | { readonly admitted: false; readonly error: MeshgateError };

export interface Throttle {
  admit(request: AdmissionRequest): Admission;
}

const ADMITTED: Admission = Object.freeze({ admitted: true as const, release() {} });

/** Admits everything; what meshgate runs with until service classes have limits. */
export const admitEverything: Throttle = Object.freeze({
  admit: () => ADMITTED,
});

export { LimitExceededError, tokenBuckets, type RateLimiter, type RateVerdict } from './rate.ts';
