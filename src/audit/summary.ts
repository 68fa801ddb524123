/**
 * One line per audit event, for people: what `meshgate audit tail` and the demo print. The
 * events come from a file anyone may have edited, so every field is cleaned of control
 * characters before it reaches a terminal.
 */

const MAX_STATEMENT_CHARS = 120;

/** The SPIFFE ID and principal an event names, for filters. */
export function identitiesOf(event: Record<string, unknown>): string[] {
  const id = event['identity'];
  if (typeof id !== 'object' || id === null) return [];
  const { spiffeId, principal } = id as Record<string, unknown>;
  return [spiffeId, principal].filter((s): s is string => typeof s === 'string');
}

/** One line per event; every field goes through `clean` because the file's text is untrusted. */
export function summarize(event: Record<string, unknown>): string {
  const str = (key: string): string => clean(event[key]);
  const who = identitiesOf(event)[0] ?? '-';
  const head = `#${str('seq')} ${str('time')} ${str('type').padEnd(11)} ${clean(who)}`;
  switch (event['type']) {
    case 'statement': {
      const error = describeError(event['error']);
      const text = clean(event['statement'], MAX_STATEMENT_CHARS);
      const micros = event['durationUs'];
      const ms = typeof micros === 'number' ? `${(micros / 1000).toFixed(1)}ms` : '-';
      // Every statement of a multi-statement text, so a DELETE after a SELECT shows.
      const verbs = Array.isArray(event['verbs']) && event['verbs'].length > 1 ? clean((event['verbs'] as unknown[]).map((v) => (typeof v === 'string' ? v : '?')).join('+'), 60) : str('verb');
      const cut = event['truncated'] === true ? ` truncated(${str('statementBytes')}B)` : '';
      return `${head} ${str('decision')} ${verbs} trace=${clean(event['traceId'], 9)} ${ms} rows=${str('rowsReturned')}/${str('rowsAffected')}${cut}${error} ${text === '-' ? '' : JSON.stringify(text)}`.trimEnd();
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
    case 'credential':
      return `${head} ${str('action')} ${str('outcome')} ${str('credential')} lease=${str('leaseId')} account=${str('account')} principal=${str('principal')} role=${str('role')} rule=${str('rule')}${describeError(event['error'])} ${str('reason')}`;
    case 'session_end':
      return `${head} statements=${str('statements')} ${str('durationMs')}ms ${str('reason')}`;
    case 'alert': {
      const lease = (event['lease'] ?? {}) as Record<string, unknown>;
      return `${head} ${str('alert')} lease=${clean(lease['id'])} account=${clean(lease['account'])} ${str('reason')}; ${str('action')}`;
    }
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
export function clean(value: unknown, max = 200): string {
  if (value === null || value === undefined || value === '') return '-';
  const raw = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  const flat = raw.replace(/\s+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}
