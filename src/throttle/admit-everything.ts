/** The throttle of a meshgate without a `throttle` section: everything admitted, nothing paid. */
import type { Admission, Throttle } from './types.ts';

const ADMITTED: Admission = Object.freeze({ admitted: true as const, release() {} });

export const admitEverything: Throttle = Object.freeze({
  admit: () => ADMITTED,
});
