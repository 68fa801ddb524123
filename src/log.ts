/** meshgate's own operational log: one JSON object per line on stderr. Never secrets. */

/** Operational log lines: a message and structured fields, never a secret. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** `always`: fields on every line (a worker's number under `serve --workers`). */
export function jsonLogger(write: (line: string) => void = (line) => process.stderr.write(line), always: Record<string, unknown> = {}): Logger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) =>
    write(JSON.stringify({ time: new Date().toISOString(), level, message, ...always, ...fields }) + '\n');
  return {
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
