/**
 * `audit query` for people: one row per event or digest in aligned columns, streamed. The
 * widths come from the first rows (a log can be larger than memory, so not from all of
 * them); a later, longer value is cut with '…'. Every value is cleaned of control
 * characters first: the log's text is untrusted and a terminal would obey it.
 */
import { clean } from '../summary.ts';
import type { DigestRow } from './digest.ts';

export interface Column {
  readonly title: string;
  /** The widest the column grows; the last column is never padded. */
  readonly max: number;
  readonly align?: 'right';
  /** Cut long values at their start, keeping the end (`…/ns/shop/sa/orders`). */
  readonly keepEnd?: boolean;
}

/** Rows whose widths decide the columns'. */
const SIZING_ROWS = 100;

export class TableWriter {
  private pending: string[][] | null = [];
  private widths: number[] = [];

  constructor(
    private readonly columns: readonly Column[],
    private readonly out: (line: string) => void,
  ) {}

  row(cells: readonly string[]): void {
    const fitted = cells.map((cell, i) => fit(cell, this.columns[i]!));
    if (this.pending === null) {
      this.print(fitted);
      return;
    }
    this.pending.push(fitted);
    if (this.pending.length >= SIZING_ROWS) this.flush();
  }

  /** Prints what is held back; a table without rows prints nothing, not even its titles. */
  end(): void {
    this.flush();
  }

  private flush(): void {
    const rows = this.pending;
    if (rows === null) return;
    this.pending = null;
    if (rows.length === 0) return;
    this.widths = this.columns.map((column, i) => Math.max(column.title.length, ...rows.map((row) => row[i]!.length)));
    this.print(this.columns.map((c) => c.title));
    for (const row of rows) this.print(row);
  }

  private print(cells: readonly string[]): void {
    const last = cells.length - 1;
    const line = cells.map((cell, i) => {
      const column = this.columns[i]!;
      const width = this.widths[i]!;
      const text = cell.length > width ? cut(cell, width, column.keepEnd === true) : cell;
      if (i === last) return text;
      return column.align === 'right' ? text.padStart(width) : text.padEnd(width);
    });
    this.out(line.join('  ').trimEnd());
  }
}

function fit(cell: string, column: Column): string {
  const text = clean(cell, Number.MAX_SAFE_INTEGER);
  return text.length > column.max ? cut(text, column.max, column.keepEnd === true) : text;
}

function cut(text: string, width: number, keepEnd: boolean): string {
  if (width < 2) return text.slice(0, width);
  return keepEnd ? '…' + text.slice(text.length - width + 1) : text.slice(0, width - 1) + '…';
}

export const EVENT_COLUMNS: readonly Column[] = [
  { title: 'TIME', max: 24 },
  { title: 'TYPE', max: 11 },
  { title: 'IDENTITY', max: 44, keepEnd: true },
  { title: 'DECISION', max: 8 },
  { title: 'RULE', max: 24 },
  { title: 'OUTCOME', max: 9 },
  { title: 'MS', max: 10, align: 'right' },
  { title: 'ROWS', max: 13, align: 'right' },
  { title: 'TRACE', max: 12 },
  { title: 'TARGET', max: 28 },
  { title: 'TEXT', max: 100 },
];

type Event = Readonly<Record<string, unknown>>;

const text = (value: unknown): string => (value === null || value === undefined || value === '' ? '-' : typeof value === 'string' ? value : JSON.stringify(value));
const ms = (micros: unknown): string => (typeof micros === 'number' ? (micros / 1000).toFixed(1) : '-');

function errorOf(event: Event): string {
  const error = event['error'];
  if (typeof error !== 'object' || error === null) return '';
  return `[${text((error as Record<string, unknown>)['code'])}] `;
}

/** The cells of one event under EVENT_COLUMNS. */
export function eventCells(event: Event): string[] {
  const identity = event['identity'] as Record<string, unknown> | null | undefined;
  const who = identity?.['principal'] ?? identity?.['spiffeId'];
  const trace = typeof event['traceId'] === 'string' ? event['traceId'].slice(0, 12) : '-';
  const cells = [text(event['time']), text(event['type']), text(who), text(event['decision']), text(event['rule']), text(event['outcome'])];
  const [duration, rows, target, what] = detailsOf(event);
  return [...cells, duration, rows, trace, target, what];
}

/** MS, ROWS, TARGET and TEXT, which say different things for each type. */
function detailsOf(event: Event): [string, string, string, string] {
  const error = errorOf(event);
  switch (event['type']) {
    case 'statement': {
      const cut = event['truncated'] === true ? '…' : '';
      return [ms(event['durationUs']), `${text(event['rowsReturned'])}/${text(event['rowsAffected'])}`, text(event['database']), `${error}${event['statement'] == null ? `(${text(event['command'])})` : text(event['statement']) + cut}`];
    }
    case 'rpc': {
      const method = text(event['method']);
      const paths = Array.isArray(event['paths']) ? event['paths'].map(text).join(', ') : '-';
      return [ms(event['durationUs']), text(event['documents']), method.slice(method.lastIndexOf('/') + 1), `${error}${paths}`];
    }
    case 'connection':
      return ['-', '-', text(event['database']), `${error}${text(event['reason'])}`];
    case 'session_end':
      return [typeof event['durationMs'] === 'number' ? event['durationMs'].toFixed(1) : '-', '-', '-', `${text(event['statements'])} statements; ${text(event['reason'])}`];
    case 'credential':
      return ['-', '-', text(event['account']), `${error}${text(event['action'])} ${text(event['credential'])} lease ${text(event['leaseId'])} for ${text(event['principal'])}: ${text(event['reason'])}`];
    case 'intent': {
      const paths = Array.isArray(event['paths']) && event['paths'].length > 0 ? event['paths'].map(text).join(', ') : null;
      return ['-', '-', text(event['command']), paths ?? text(event['statement'])];
    }
    case 'alert': {
      const lease = (event['lease'] ?? {}) as Record<string, unknown>;
      return ['-', '-', text(lease['account']), `${text(event['alert'])}: ${text(event['reason'])}; ${text(event['action'])}`];
    }
    case 'recovered':
      return ['-', '-', '-', `${text(event['cause'])}: ${text(event['detail'])}`];
    case 'policy': {
      const from = event['previousVersion'] == null ? '' : `${text(event['previousVersion'])} → `;
      const ended = typeof event['sessionsEnded'] === 'number' && event['sessionsEnded'] > 0 ? `; ${event['sessionsEnded']} sessions ended` : '';
      return ['-', text(event['rules']), text(event['trigger']), `${error}${text(event['action'])} ${from}${text(event['policyVersion'])} from ${text(event['source'])}${ended}`];
    }
    default:
      return ['-', '-', '-', '-'];
  }
}

export const DIGEST_COLUMNS: readonly Column[] = [
  { title: 'ID', max: 16 },
  { title: 'COUNT', max: 10, align: 'right' },
  { title: 'FAILED', max: 8, align: 'right' },
  { title: 'TOTAL_MS', max: 12, align: 'right' },
  { title: 'AVG_MS', max: 10, align: 'right' },
  { title: 'P99_MS', max: 10, align: 'right' },
  { title: 'ROWS', max: 12, align: 'right' },
  { title: 'AFFECTED', max: 10, align: 'right' },
  { title: 'IDENTITIES', max: 40, keepEnd: true },
  { title: 'FINGERPRINT', max: 120 },
];

export function digestCells(row: DigestRow): string[] {
  const firestore = row.engine === 'firestore';
  const others = row.identities.length - 1 + (row.otherIdentities > 0 ? 1 : 0);
  const top = row.identities[0]?.identity ?? '-';
  return [
    row.id,
    String(row.count),
    String(row.failed),
    (row.totalUs / 1000).toFixed(1),
    (row.totalUs / 1000 / Math.max(row.count, 1)).toFixed(1),
    row.p99Us === null ? '-' : (row.p99Us / 1000).toFixed(1),
    String(firestore ? row.documents : row.rowsReturned),
    firestore ? '-' : String(row.rowsAffected),
    // The one who ran it most, and how many more: the JSON output names them all.
    others > 0 ? `${top} +${others}${row.otherIdentities > 0 ? '+' : ''}` : top,
    row.fingerprint,
  ];
}
