/**
 * The throttle seam's types: what an engine asks (AdmissionRequest) and what it gets back
 * (Admission). Apart from index.ts so the throttle's own files can use them.
 */
import type { MeshgateError } from '../errors/index.ts';

export interface AdmissionRequest {
  readonly engine: 'mysql' | 'firestore';
  /** What is asking: a new session, one statement of a session, one gRPC call. */
  /** `credential`: direct credentials issued (`creds issue`): counted as a login, holds nothing. */
  readonly kind: 'session' | 'statement' | 'call' | 'credential';
  readonly serviceClass: string;
  /** The caller, for per-identity limits (its SPIFFE ID). */
  readonly principal: string;
}

export type Admission =
  | {
      readonly admitted: true;
      /** Gives back what was taken (a concurrency or session slot); once, later calls do nothing. */
      release(): void;
      /** How long the caller waited in its class's queue (for the audit event); absent or 0: not at all. */
      readonly waitedMs?: number;
    }
  | { readonly admitted: false; readonly error: MeshgateError };

export interface WaitOptions {
  /** The caller went away: stop waiting (resolves refused, MG_THROTTLED, limit `cancelled`). */
  readonly signal?: AbortSignal;
}

export interface Throttle {
  /** Admits or refuses now; a class that would wait refuses instead (callers that cannot wait). */
  admit(request: AdmissionRequest): Admission;
  /**
   * Admits now when possible (no promise), or waits in the class's queue where the class says
   * `overLimit: { wait }`. Absent: the throttle never waits (see waitForAdmission).
   */
  admitOrWait?(request: AdmissionRequest, options?: WaitOptions): Admission | Promise<Admission>;
  /** Refuses whoever still waits and stops its timer (shutdown). */
  close?(): void;
}
