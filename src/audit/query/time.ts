/**
 * The bounds of `audit query --since/--until`: an RFC 3339 time (`2025-06-01T12:00:00Z`,
 * `2025-06-01T14:00:00.5+02:00`), a day (`2025-06-01`, its first instant in UTC), or a
 * duration before now (`15m`, `2h`, `7d`: the forms every meshgate duration takes).
 */
import { mgError } from '../../errors/index.ts';
import { parseDuration } from '../../identity/index.ts';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?$/;
const RELATIVE = /^\d+[a-z]+$/;

/** Epoch milliseconds for `text`; MG_USAGE naming the option and the forms it takes. */
export function parseTimeBound(text: string, option: string, nowMs: number): number {
  const trimmed = text.trim();
  if (RELATIVE.test(trimmed)) {
    try {
      return nowMs - parseDuration(trimmed, option) * 1000;
    } catch {
      // The message below names every form, not only durations.
    }
  }
  const match = RFC3339.exec(trimmed);
  if (match !== null && fieldsInRange(match)) {
    const ms = Date.parse(match[4] === undefined ? `${trimmed}T00:00:00Z` : trimmed.replace(' ', 'T'));
    if (!Number.isNaN(ms)) return ms;
  }
  throw mgError(
    'MG_USAGE',
    `${option} ${JSON.stringify(text)} is not a time: give an RFC 3339 time (2025-06-01T12:00:00Z, 2025-06-01T14:00:00+02:00), ` +
      'a day (2025-06-01, from midnight UTC), or how long ago (90s, 15m, 2h, 7d)',
  );
}

/** Date.parse rolls 2025-02-30 over into March; a typo should not silently move the window. */
function fieldsInRange(match: RegExpExecArray): boolean {
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return false;
  if (match[4] === undefined) return true;
  const offset = match[8]!;
  const offsetOk = offset.length === 1 || (Number(offset.slice(1, 3)) <= 23 && Number(offset.slice(4, 6)) <= 59);
  return Number(match[4]) <= 23 && Number(match[5]) <= 59 && Number(match[6]) <= 59 && offsetOk;
}
