/** meshgate's JSON-lines logger writing into an array, for tests that read what it said. */
import type { Logger } from '../../src/log.ts';
import { jsonLogger } from '../../src/log.ts';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly [field: string]: unknown;
}

export function captureLog(): { readonly log: Logger; readonly lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const log = jsonLogger((line) => {
    raw.push(line);
    lines.push(JSON.parse(line) as LogLine);
  });
  return { log, lines, text: () => raw.join('') };
}
