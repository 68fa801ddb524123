/**
 * `meshgate audit verify FILE` and `meshgate audit tail FILE`: read-only tools over the
 * hash-chained JSONL audit file. Exit codes: 0 intact, 4 tampered (scripts and cron jobs
 * alert on it), 2 usage, 1 the file could not be read.
 */
import { mgError } from '../../errors/index.ts';
import { linesBackward } from '../../audit/lines.ts';
import { verifyAuditFile } from '../../audit/verify.ts';
import { AUDIT_EVENT_TYPES } from '../../audit/types.ts';
import { UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { AUDIT_TAIL, AUDIT_VERIFY, EXIT_TAMPERED } from '../specs/audit.ts';

const MAX_STATEMENT_CHARS = 120;

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
        if (identity !== undefined && !identityOf(event).some((s) => s.includes(identity))) continue;
        picked.push(summarize(event));
      }
    } catch (error) {
      throw unreadable(path, error);
    }
    for (const line of picked.reverse()) io.out(line);
    return 0;
  },
};

function identityOf(event: Record<string, unknown>): string[] {
  const id = event['identity'];
  if (typeof id !== 'object' || id === null) return [];
  const { spiffeId, principal } = id as Record<string, unknown>;
  return [spiffeId, principal].filter((s): s is string => typeof s === 'string');
}

/** One line per event; every field goes through `clean` because the file's text is untrusted. */
export function summarize(event: Record<string, unknown>): string {
  const str = (key: string): string => clean(event[key]);
  const who = identityOf(event)[0] ?? '-';
  const head = `#${str('seq')} ${str('time')} ${str('type').padEnd(11)} ${clean(who)}`;
  switch (event['type']) {
    case 'statement': {
      const error = describeError(event['error']);
      const text = clean(event['statement'], MAX_STATEMENT_CHARS);
      const micros = event['durationUs'];
      const ms = typeof micros === 'number' ? `${(micros / 1000).toFixed(1)}ms` : '-';
      return `${head} ${str('decision')} ${str('verb')} trace=${clean(event['traceId'], 9)} ${ms} rows=${str('rowsReturned')}/${str('rowsAffected')}${error} ${text === '-' ? '' : JSON.stringify(text)}`.trimEnd();
    }
    case 'connection': {
      const peer = event['peer'] as { address?: unknown; port?: unknown } | null | undefined;
      const from = peer ? `${clean(peer.address)}:${clean(peer.port)}` : '-';
      return `${head} ${str('decision')} rule=${str('rule')} from=${from} db=${str('database')} role=${str('upstreamRole')}${describeError(event['error'])} ${str('reason')}`;
    }
    case 'rpc': {
      const paths = Array.isArray(event['paths']) ? (event['paths'] as unknown[]).map((p) => clean(p, 60)).join(',') : '-';
      const xfcc = typeof event['xfcc'] === 'object' && event['xfcc'] !== null && (event['xfcc'] as Record<string, unknown>)['stripped'] === true ? ' xfcc=stripped' : '';
      const method = clean(event['method']).replace(/^google\.firestore\.v1\.Firestore\//, '');
      return `${head} ${str('decision')} ${method} ${paths} status=${str('status')} rule=${str('rule')} docs=${str('documents')} trace=${clean(event['traceId'], 9)}${xfcc}${describeError(event['error'])}`.trimEnd();
    }
    case 'session_end':
      return `${head} statements=${str('statements')} ${str('durationMs')}ms ${str('reason')}`;
    default:
      return head;
  }
}

function describeError(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '';
  const { code, message } = error as Record<string, unknown>;
  return ` error=${clean(code)}:${clean(message, 80)}`;
}

/** Control characters (ANSI escapes above all) would let a logged statement drive the terminal. */
function clean(value: unknown, max = 200): string {
  if (value === null || value === undefined || value === '') return '-';
  const raw = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  const flat = raw.replace(/\s+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

export const auditCommands: readonly CliCommand[] = [verify, tail];
