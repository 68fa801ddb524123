/**
 * `meshgate audit query`: the events of a log (or, with --postgres, of the table the replicas
 * export into) that pass the filters, as a table or JSON lines, or their digest. Output
 * streams as the log is read; what the source passed over (lines that are not events, a
 * rotation during the read) is said on stderr afterwards.
 */
import {
  compileFilter,
  DIGEST_COLUMNS,
  digestCells,
  digestEvents,
  EVENT_COLUMNS,
  eventCells,
  openJsonlEventSource,
  queryEvents,
  TableWriter,
  type AuditEventSource,
  type DigestRow,
  type EventFilter,
  type QueryFilterInput,
  type SourcedEvent,
} from '../../audit/index.ts';
import { openPostgresEventSource, type PostgresEventSource } from '../../audit-pg/index.ts';
import { loadConfigFile } from '../../config/load.ts';
import { mgError } from '../../errors/index.ts';
import { optionalString, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { AUDIT_QUERY } from '../specs/audit.ts';

const LIST_OPTIONS = ['identity', 'namespace', 'trace', 'database', 'collection', 'verb', 'decision', 'rule', 'engine', 'type', 'outcome', 'fingerprint'] as const;

function filterInput(values: OptionValues): QueryFilterInput {
  const input: Record<string, unknown> = {};
  for (const name of LIST_OPTIONS) {
    const given = values[name];
    if (Array.isArray(given)) input[name] = given.map(String);
  }
  for (const name of ['since', 'until'] as const) {
    const given = values[name];
    if (typeof given === 'string') input[name] = given;
  }
  return input as QueryFilterInput;
}

function limitOf(values: OptionValues): number {
  const text = optionalString(values, 'limit');
  if (text === undefined) return Infinity;
  const limit = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(limit) || limit < 1) throw mgError('MG_USAGE', `--limit ${JSON.stringify(text)} is not a positive whole number`);
  return limit;
}

function logPathOf(values: OptionValues, positionals: string[]): string {
  const [given, ...extra] = positionals;
  if (extra.length > 0) throw mgError('MG_USAGE', `unexpected argument '${extra[0]}': give one audit FILE or DIR`);
  const configPath = optionalString(values, 'config');
  if (given !== undefined && configPath !== undefined) throw mgError('MG_USAGE', 'give the audit FILE|DIR or --config, not both');
  const path = given ?? (configPath === undefined ? undefined : loadConfigFile(configPath).audit.file);
  if (path === undefined || path === '') throw mgError('MG_USAGE', 'the audit FILE or DIR is required (or --config meshgate.yaml, to read its audit.file)');
  return path;
}

/** As JSON lines or a table; how many there were. */
async function printEvents(batches: AsyncIterable<readonly SourcedEvent[]>, json: boolean, io: CliIO): Promise<number> {
  let count = 0;
  const table = json ? null : new TableWriter(EVENT_COLUMNS, io.out);
  for await (const batch of batches) {
    for (const { event } of batch) {
      if (table === null) io.out(JSON.stringify(event));
      else table.row(eventCells(event));
    }
    count += batch.length;
  }
  table?.end();
  return count;
}

function printDigest(rows: readonly DigestRow[], json: boolean, io: CliIO): void {
  if (json) {
    for (const row of rows) io.out(JSON.stringify(row));
    return;
  }
  const table = new TableWriter(DIGEST_COLUMNS, io.out);
  for (const row of rows) table.row(digestCells(row));
  table.end();
}

export const queryCommand: CliCommand = {
  ...AUDIT_QUERY,
  async run(values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    if (values['postgres'] === undefined && (values['table'] !== undefined || values['replica'] !== undefined)) throw mgError('MG_USAGE', '--table and --replica go with --postgres');
    const limit = limitOf(values);
    const json = values['json'] === true;
    const input = filterInput(values);
    const digest = values['digest'] === true;
    if (digest && input.type?.some((t) => t.split(',').some((one) => !['statement', 'rpc'].includes(one.trim())))) {
      throw mgError('MG_USAGE', '--digest groups statement and rpc events: --type may name only those');
    }
    const filter = compileFilter(input, Date.now());
    const postgres = optionalString(values, 'postgres');
    const source = postgres === undefined ? await openJsonlEventSource(logPathOf(values, positionals)) : postgresSource(postgres, values, positionals, input, filter.window);
    try {
      await run(source, filter, { digest, json, limit }, io);
    } finally {
      await (source as Partial<PostgresEventSource>).close?.();
    }
    return 0;
  },
};

function postgresSource(url: string, values: OptionValues, positionals: string[], filter: QueryFilterInput, window: EventFilter['window']): PostgresEventSource {
  if (positionals.length > 0 || values['config'] !== undefined) throw mgError('MG_USAGE', '--postgres reads the table, not a file: give either --postgres or the audit FILE|DIR (--config)');
  const table = optionalString(values, 'table');
  const replicas = (values['replica'] as string[] | undefined) ?? [];
  return openPostgresEventSource({ connectionString: url, ...(table === undefined ? {} : { table }), replicas, filter, window });
}

async function run(source: AuditEventSource, filter: EventFilter, how: { digest: boolean; json: boolean; limit: number }, io: CliIO): Promise<void> {
  const { digest, json, limit } = how;
  if (digest) {
    const rows = (await digestEvents(source, filter)).slice(0, limit);
    printDigest(rows, json, io);
    if (rows.length === 0) io.err(`no statements or Firestore calls in ${source.name} match`);
  } else if ((await printEvents(queryEvents(source, filter, limit), json, io)) === 0) {
    io.err(`no events in ${source.name} match`);
  }
  for (const note of source.notes()) io.err(`note: ${note}`);
}
