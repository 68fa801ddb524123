/** What `meshgate probe` accepts and says about itself; the command is in ../commands/probe.ts. */
import type { CommandSpec } from '../command.ts';

/** A link of the chain is broken: what alerting keys on. */
export const EXIT_BROKEN = 1;

export const PROBE: CommandSpec = {
  path: ['probe'],
  summary: 'send a synthetic statement through meshgate and check that its tag, audit event, span and metrics agree',
  usage: '--mysql HOST:PORT --database NAME --cert PATH --key PATH --ca PATH [--audit FILE] [--timeout 10s] [--json]',
  help: [
    'options:',
    "  --mysql HOST:PORT       meshgate's MySQL listener",
    '  --database NAME         a database policy lets the probe identity use (it only SELECTs)',
    "  --cert PATH             the probe's X.509-SVID: its SPIFFE ID is the identity every",
    '                          record must name',
    '  --key PATH              the private key of --cert',
    "  --ca PATH               the bundle meshgate's certificate chains to",
    "  --audit FILE            meshgate's audit file (readable where the probe runs): its",
    '                          statement event must carry the trace id and the identity',
    '  --timeout DURATION      how long to wait for the statement and its records (default 10s)',
    '  --json                  print one JSON object: traceId, identity, links[{link, ok, detail}]',
    '',
    'The probe makes a fresh W3C trace id and sends one SELECT carrying it in a sqlcommenter',
    "traceparent. The SELECT reads MariaDB's processlist entry for itself, so the tag MariaDB",
    'saw is checked by MariaDB. Each link is ok, BROKEN (with what to look at) or skipped',
    '(the probe was not told where to look); skipped links never fail the probe.',
    '',
    `exit status: 0 every link checked holds, ${EXIT_BROKEN} a link is broken, 2 usage.`,
    '',
    'example (a Kubernetes CronJob, or CI after a deploy):',
    '  meshgate probe --mysql meshgate.db:3306 --database shop --cert probe.pem --key probe-key.pem \\',
    '      --ca bundle.pem --audit /var/lib/meshgate/audit.jsonl --json',
  ].join('\n'),
  options: {
    mysql: { type: 'string' },
    database: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    audit: { type: 'string' },
    timeout: { type: 'string', default: '10s' },
    json: { type: 'boolean' },
  },
};
