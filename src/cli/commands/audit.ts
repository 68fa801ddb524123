/**
 * `meshgate audit verify FILE` and `meshgate audit tail FILE`: read-only tools over the
 * hash-chained JSONL audit file. Exit codes: 0 intact, 4 tampered (scripts and cron jobs
 * alert on it), 2 usage, 1 the file could not be read.
 */
import { AUDIT_EVENT_TYPES, identitiesOf, linesBackward, summarize, verifyAuditFile } from '../../audit/index.ts';
import { mgError } from '../../errors/index.ts';
import { UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { AUDIT_TAIL, AUDIT_VERIFY, EXIT_TAMPERED } from '../specs/audit.ts';

function onePath(positionals: string[]): string {
  const [path, ...extra] = positionals;
  if (path === undefined || path === '') throw new UsageError('the audit FILE is required');
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  return path;
}

function unreadable(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UsageError(`no such file: ${path}`);
  return mgError('MG_AUDIT_UNAVAILABLE', `cannot read the audit file ${path} (${code ?? 'unknown error'})`, error);
}

const verify: CliCommand = {
  ...AUDIT_VERIFY,
  async run(_values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    const path = onePath(positionals);
    let result;
    try {
      result = await verifyAuditFile(path);
    } catch (error) {
      throw unreadable(path, error);
    }
    if (result.ok) {
      io.out(`ok: ${result.events} events, chain intact`);
      io.out(`last hash: ${result.lastHash}`);
      return 0;
    }
    io.out(`TAMPERED at line ${result.firstBadLine ?? '?'}: ${result.problem ?? 'unknown problem'}`);
    return EXIT_TAMPERED;
  },
};

const tail: CliCommand = {
  ...AUDIT_TAIL,
  async run(values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    const path = onePath(positionals);
    const count = Number(values['lines']);
    if (!Number.isSafeInteger(count) || count < 1) throw new UsageError('-n must be a positive integer');
    const type = typeof values['type'] === 'string' ? values['type'] : undefined;
    if (type !== undefined && !(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) {
      throw new UsageError(`--type must be one of ${AUDIT_EVENT_TYPES.join(', ')}`);
    }
    const identity = typeof values['identity'] === 'string' ? values['identity'] : undefined;

    const picked: string[] = [];
    try {
      for await (const { bytes } of linesBackward(path)) {
        if (picked.length >= count) break;
        let event: Record<string, unknown> | null = null;
        try {
          const parsed: unknown = JSON.parse(bytes.toString('utf8'));
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) event = parsed as Record<string, unknown>;
        } catch {
          // Shown as unreadable below, unless a filter would have hidden it anyway.
        }
        if (event === null) {
          if (type === undefined && identity === undefined) picked.push('(a line that is not a JSON event)');
          continue;
        }
        if (type !== undefined && event['type'] !== type) continue;
        if (identity !== undefined && !identitiesOf(event).some((s) => s.includes(identity))) continue;
        picked.push(summarize(event));
      }
    } catch (error) {
      throw unreadable(path, error);
    }
    for (const line of picked.reverse()) io.out(line);
    return 0;
  },
};

export const auditCommands: readonly CliCommand[] = [verify, tail];
