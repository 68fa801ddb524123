/** What `meshgate audit ...` accepts and says about itself; the commands are in ../commands/audit.ts. */
import { AUDIT_EVENT_TYPES } from '../../audit/index.ts';
import type { CommandSpec } from '../command.ts';

/** Exit code of `audit verify` for a broken chain, so scripts and cron jobs can alert on it. */
export const EXIT_TAMPERED = 4;

export const AUDIT_VERIFY: CommandSpec = {
  path: ['audit', 'verify'],
  summary: 'check an audit log: its hash chain across rotated files, its signed checkpoints, its anchor',
  usage: '[FILE] [--public-key KEY.pub …] [--config meshgate.yaml [--anchor [--anchor-id ID]]] [--from-file N]',
  help: [
    '  FILE                    the audit file meshgate writes (audit.file); its rotated files',
    '                          (audit.000001.jsonl, …) and checkpoints (audit.checkpoints.jsonl) are read too',
    '  --public-key FILE       the .pub written by `meshgate audit keygen`; every checkpoint must be signed by',
    '                          one of the keys given (repeat for a log signed by several keys over time)',
    '  --config FILE           meshgate.yaml: FILE defaults to its audit.file, the public key to audit.signingKey + .pub',
    '  --anchor                compare the log with its anchor in the state store the config names',
    '  --anchor-id ID          the anchor to read (default audit.anchorId, or <replica id>:<audit file>)',
    '  --from-file N           the oldest file kept (retention removed those before it); default 1',
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
