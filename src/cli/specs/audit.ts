/** What `meshgate audit ...` accepts and says about itself; the commands are in ../commands/audit.ts. */
import type { CommandSpec } from '../command.ts';

/**
 * The audit's own lists, repeated for the help: importing the audit here would load it, and
 * the policy and identity code its query reads with, for every `meshgate --help`.
 * test/unit/cli/specs.test.ts keeps them equal to AUDIT_EVENT_TYPES, DECISIONS, ENGINES and OUTCOMES.
 */
export const AUDIT_LISTS = {
  types: ['connection', 'statement', 'session_end', 'rpc', 'credential', 'intent', 'recovered', 'alert', 'policy'],
  decisions: ['allow', 'deny'],
  engines: ['mysql', 'firestore'],
  outcomes: ['completed', 'failed', 'unknown', 'refused'],
} as const;
const AUDIT_EVENT_TYPES = AUDIT_LISTS.types;

/** Exit code of `audit verify` for a broken chain, so scripts and cron jobs can alert on it. */
export const EXIT_TAMPERED = 4;

export const AUDIT_VERIFY: CommandSpec = {
  path: ['audit', 'verify'],
  summary: 'check an audit log: its hash chain across rotated files, its signed checkpoints, its anchor',
  usage: '[FILE] [--public-key KEY.pub …] [--config meshgate.yaml [--anchor [--anchor-id ID]]] [--from-file N] | --postgres URL [--table T] [--replica ID …]',
  help: [
    '  FILE                    the audit file meshgate writes (audit.file); its rotated files',
    '                          (audit.000001.jsonl, …) and checkpoints (audit.checkpoints.jsonl) are read too',
    '  --public-key FILE       the .pub written by `meshgate audit keygen`; every checkpoint must be signed by',
    '                          one of the keys given (repeat for a log signed by several keys over time)',
    '  --config FILE           meshgate.yaml: FILE defaults to its audit.file, the public key to audit.signingKey + .pub',
    '  --anchor                compare the log with its anchor in the state store the config names',
    '  --anchor-id ID          the anchor to read (default audit.anchorId, or <replica id>:<audit file>)',
    '  --from-file N           the oldest file kept (retention removed those before it); default 1',
    '  --postgres URL          instead of a file: the table audit.export.postgres fills (postgres://user@host/db;',
    '                          a password in PGPASSWORD): each replica\'s chain is re-verified from its rows\' line text,',
    '                          and the columns and jsonb against the line; a changed, deleted or moved row is named',
    '  --table T               the export\'s table (default meshgate_audit_events)',
    '  --replica ID            only this replica (repeat for several); default every replica in the table',
    '',
    `Exits 0 when the log is whole, ${EXIT_TAMPERED} when it is not, printing each finding with its file and line:`,
    'an edited line, a chain rebuilt after an edit (its signed checkpoints disagree), lines cut from the end,',
    'a file swapped in from another run, a rotated file missing. Without checkpoints and an anchor, a chain',
    'cannot show lines cut from its end.',
  ].join('\n'),
  options: {
    'public-key': { type: 'string', multiple: true },
    config: { type: 'string' },
    anchor: { type: 'boolean' },
    'anchor-id': { type: 'string' },
    'from-file': { type: 'string' },
    postgres: { type: 'string' },
    table: { type: 'string' },
    replica: { type: 'string', multiple: true },
  },
  allowPositionals: true,
};

export const AUDIT_KEYGEN: CommandSpec = {
  path: ['audit', 'keygen'],
  summary: 'create the Ed25519 key that signs audit checkpoints',
  usage: '--out /etc/meshgate/audit-signing.key',
  help: [
    '  --out FILE              where to write the private key (mode 0600); the public key goes to FILE.pub',
    '',
    'Keep FILE apart from the audit directory and name it in audit.signingKey; copy FILE.pub to wherever',
    'logs are verified (`meshgate audit verify --public-key FILE.pub`). An existing key is never overwritten.',
  ].join('\n'),
  options: { out: { type: 'string' } },
};

export const AUDIT_TAIL: CommandSpec = {
  path: ['audit', 'tail'],
  summary: 'print the last events of a JSONL audit file, one line each',
  usage: `FILE [-n 20] [--type ${AUDIT_EVENT_TYPES.join('|')}] [--identity SUBSTR]`,
  help: [
    '  FILE                    a JSONL audit file written by meshgate',
    '  -n, --lines N           how many events to print (default 20)',
    `  --type TYPE             only events of this type: ${AUDIT_EVENT_TYPES.join(', ')}`,
    '  --identity SUBSTR       only events whose SPIFFE ID or principal contains SUBSTR',
  ].join('\n'),
  options: {
    lines: { type: 'string', short: 'n', default: '20' },
    type: { type: 'string' },
    identity: { type: 'string' },
  },
  allowPositionals: true,
};

export const AUDIT_QUERY: CommandSpec = {
  path: ['audit', 'query'],
  summary: 'find audit events by identity, trace, database, collection, verb, decision, rule and time; or a digest of what each workload runs',
  usage: '[FILE|DIR | --postgres URL [--table T] [--replica ID]] [--identity ID] [--trace ID] [--since 1h] [… filters] [--json] [--limit N] [--digest]',
  help: [
    '  FILE|DIR                the audit file meshgate writes (audit.file), any of its rotated files, or the',
    '                          directory holding it: the whole log is read, rotated files first, in order',
    '  --config FILE           meshgate.yaml: read the log its audit.file names',
    '  --postgres URL          read the table audit.export.postgres fills, across replicas, in time order',
    '                          (postgres://user@host/db; a password in PGPASSWORD); the filters run in SQL',
    '  --table T               the export\'s table (default meshgate_audit_events)',
    '  --replica ID            only this replica\'s events (repeat for several)',
    '',
    'filters (all must hold; a filter given several times, or with a comma-separated list, holds for any):',
    "  --identity ID           who acted: a SPIFFE ID or principal, exact or a glob ('*/ns/shop/*': * any",
    "                          characters, ? one); a credential event's lease owner counts too",
    '  --namespace NS          the identity\'s Kubernetes namespace (glob)',
    '  --trace ID              a W3C trace id (32 hex digits, or its first 8 or more), or a traceparent',
    '  --database NAME         the MariaDB database of a connection, statement or credential (glob)',
    '  --collection PATTERN    Firestore calls touching a path like a policy pattern: orders/*, users/*/orders/*,',
    '                          orders/** (everything beneath); a collection alone (orders) means its documents',
    '  --verb VERB             a SQL verb (SELECT, DELETE: any statement of a multi-statement text) or a',
    '                          Firestore method (GetDocument, Commit, RunQuery); any case',
    `  --decision D            ${AUDIT_LISTS.decisions.join(' or ')}`,
    '  --rule ID               the policy rule that decided (glob)',
    `  --engine E              ${AUDIT_LISTS.engines.join(' or ')}`,
    `  --type TYPE             ${AUDIT_EVENT_TYPES.join(', ')}`,
    `  --outcome O             ${AUDIT_LISTS.outcomes.join(', ')} (refused: a credential meshgate said no to)`,
    "  --fingerprint ID        statements and calls of one digest (the ID column of --digest)",
    '  --since TIME            from TIME on: RFC 3339 (2025-06-01T12:00:00Z, …+02:00), a day (2025-06-01,',
    '                          UTC), or how long ago (90s, 15m, 2h, 7d)',
    '  --until TIME            before TIME, in the same forms',
    '',
    'output:',
    '  --json                  one JSON object a line: each event as stored (with its seq, prev and hash),',
    '                          or each digest',
    '  --limit N               at most N events (the first N, oldest first), or the N digests of most time',
    '  --digest                statements grouped by fingerprint (literals, IN lists, VALUES rows, comments,',
    '                          spacing and case folded), Firestore calls by method and path pattern: count,',
    '                          failed, total, average and p99 time (within 1 %), rows, who ran them; by total time',
    '',
    'The log is read as it is, line by line (it may be larger than memory): `audit verify` says whether it was',
    'edited. Lines that are not events are passed over and counted on stderr. Exit 0 also when nothing matches.',
  ].join('\n'),
  options: {
    config: { type: 'string' },
    postgres: { type: 'string' },
    table: { type: 'string' },
    replica: { type: 'string', multiple: true },
    identity: { type: 'string', multiple: true },
    namespace: { type: 'string', multiple: true },
    trace: { type: 'string', multiple: true },
    database: { type: 'string', multiple: true },
    collection: { type: 'string', multiple: true },
    verb: { type: 'string', multiple: true },
    decision: { type: 'string', multiple: true },
    rule: { type: 'string', multiple: true },
    engine: { type: 'string', multiple: true },
    type: { type: 'string', multiple: true },
    outcome: { type: 'string', multiple: true },
    fingerprint: { type: 'string', multiple: true },
    since: { type: 'string' },
    until: { type: 'string' },
    json: { type: 'boolean' },
    limit: { type: 'string' },
    digest: { type: 'boolean' },
  },
  allowPositionals: true,
};
