/**
 * Event timestamps. Formatting a Date costs more than everything else a statement event
 * needs; under load many events share a millisecond, so the string is reused.
 */
let cachedMs = -1;
let cachedIso = '';

export function auditTime(nowMs: number = Date.now()): string {
  if (nowMs !== cachedMs) {
    cachedMs = nowMs;
    cachedIso = new Date(nowMs).toISOString();
  }
  return cachedIso;
}
