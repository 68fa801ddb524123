/** What `meshgate audit ...` accepts and says about itself; the commands are in ../commands/audit.ts. */
import { AUDIT_EVENT_TYPES } from '../../audit/index.ts';
import type { CommandSpec } from '../command.ts';

/** Exit code of `audit verify` for a broken chain, so scripts and cron jobs can alert on it. */
export const EXIT_TAMPERED = 4;

export const AUDIT_VERIFY: CommandSpec = {
  path: ['audit', 'verify'],
  summary: 'check the hash chain of a JSONL audit file',
  usage: 'FILE',
  help: [
    '  FILE                    a JSONL audit file written by meshgate',
    '',
    `Exits 0 when every line matches its hash and the chain has no gap, ${EXIT_TAMPERED} when it does not.`,
    'A chain cannot reveal lines cut from the end: compare the printed last hash with a copy.',
  ].join('\n'),
  options: {},
  allowPositionals: true,
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
