/**
 * Durations as people type them on the command line: `90s`, `30m`, `4h`, `7d`. One unit per
 * value keeps it unambiguous (`1h30m` would invite `1m30h` typos); say `90m` instead.
 */
import { mgError } from '../errors/index.ts';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
type Unit = keyof typeof UNIT_SECONDS;

const DURATION = /^(\d{1,9})([smhd])$/;

/** Parses `<positive integer><s|m|h|d>` into seconds; throws MG_USAGE naming the problem. */
export function parseDuration(text: string, what = 'duration'): number {
  if (typeof text !== 'string') throw new TypeError('parseDuration expects a string');
  const match = DURATION.exec(text.trim());
  if (match === null) {
    throw mgError(
      'MG_USAGE',
      `${what} ${JSON.stringify(text)} is not a duration: write a whole number and one unit, s, m, h or d (e.g. 90s, 30m, 4h, 7d)`,
    );
  }
  const amount = Number(match[1]);
  const seconds = amount * UNIT_SECONDS[match[2] as Unit];
  if (seconds <= 0) throw mgError('MG_USAGE', `${what} must be longer than zero (got ${JSON.stringify(text)})`);
  return seconds;
}

/** Renders seconds back in the largest unit that divides them exactly, for messages. */
export function formatDuration(seconds: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    const size = UNIT_SECONDS[unit];
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
