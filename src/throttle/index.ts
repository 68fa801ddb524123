/**
 * The throttle stage: between policy and upstream, every session, statement and call asks
 * to be admitted for its service class (the policy decision names it). Without a `throttle`
 * section every request is admitted (admitEverything, no cost); with one, ClassThrottle
 * enforces the classes' rate, concurrency and session limits, and UpstreamBudget shares the
 * upstream connections between classes by priority.
 */
import type { ThrottleConfig } from '../config/schema.ts';
import type { BucketSource } from './class-state.ts';
import { ClassThrottle } from './class-throttle.ts';
import type { ThrottleClock } from './clock.ts';
import { admitEverything } from './admit-everything.ts';
import { throttleSettings } from './settings.ts';
import type { Admission, AdmissionRequest, Throttle, WaitOptions } from './types.ts';

export type { Admission, AdmissionRequest, Throttle, WaitOptions } from './types.ts';
export { admitEverything } from './admit-everything.ts';

/** The waiting path where the throttle has one, the synchronous one otherwise. */
export function waitForAdmission(throttle: Throttle, request: AdmissionRequest, options?: WaitOptions): Admission | Promise<Admission> {
  return throttle.admitOrWait === undefined ? throttle.admit(request) : throttle.admitOrWait(request, options);
}

/**
 * The throttle a configuration asks for: none configured, nothing limited and nothing paid.
 * With `throttle.shared`, pass `rates` (SharedRates.connect) so rate limits are shared by the replicas.
 */
export function createThrottle(config: ThrottleConfig | undefined, options: { readonly clock?: ThrottleClock; readonly rates?: BucketSource } = {}): Throttle {
  return config === undefined ? admitEverything : new ClassThrottle(throttleSettings(config), options);
}

export { ClassThrottle, type ClassSnapshot, type ClassThrottleOptions } from './class-throttle.ts';
export { localBuckets, type BucketSource } from './class-state.ts';
export { systemClock, type ThrottleClock, type Timer } from './clock.ts';
export { isThrottledError, ThrottledError, type ThrottleLimit } from './refusal.ts';
export { throttleSettings, type BudgetSettings, type ClassSettings, type SharedSettings, type ThrottleSettings } from './settings.ts';
export { SharedRates, type SharedRatesOptions, type SharedRatesState } from './shared-rates.ts';
export { sharedRatesFor, type SharedRatesFor } from './shared-connect.ts';
export { SharedBucket, leaseSize, localShare } from './shared-bucket.ts';
export type { RateBucket } from './bucket.ts';
export { UpstreamBudget, type BudgetRequest, type BudgetSnapshot } from './upstream-budget.ts';
export { LimitExceededError, tokenBuckets, type RateLimiter, type RateVerdict } from './rate.ts';
export { throttlingFor, type Throttling, type ThrottlingDeps } from './from-config.ts';
