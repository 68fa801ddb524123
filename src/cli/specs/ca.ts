/** What `meshgate ca ...` accepts and says about itself; the commands are in ../commands/ca.ts. */
import type { CommandSpec } from '../command.ts';

export const DEFAULT_CA_DIR = '.meshgate/ca';

const DIR_HELP = `  --dir DIR               the CA directory (default ${DEFAULT_CA_DIR})`;

export const CA_INIT: CommandSpec = {
  path: ['ca', 'init'],
  summary: 'create the built-in CA: a root key, certificate and trust bundle for one trust domain',
  usage: '--trust-domain TD [--dir DIR] [--ttl 365d] [--force]',
  help: [
    '  --trust-domain TD       the SPIFFE trust domain this CA signs for, e.g. example.org',
    '                          (lower-case letters, digits, ".", "-", "_"; no scheme)',
    DIR_HELP,
    '  --ttl DURATION          how long the root is valid: s, m, h or d (default 365d)',
    '  --force                 replace an existing CA; certificates it issued stop verifying',
    '',
    'Writes ca.crt (root), ca.key (private key, mode 0600), bundle.pem (trust bundle) and ca.json.',
  ].join('\n'),
  options: {
    'trust-domain': { type: 'string' },
    dir: { type: 'string' },
    ttl: { type: 'string' },
    force: { type: 'boolean' },
  },
};

export const CA_ISSUE: CommandSpec = {
  path: ['ca', 'issue'],
  summary: 'issue a short-lived X.509-SVID (client/server certificate) for a SPIFFE ID',
  usage: '--spiffe-id ID [--dir DIR] [--ttl 4h] [--out DIR] [--name svid]',
  help: [
    '  --spiffe-id ID          the workload identity, in the CA\'s trust domain,',
    '                          e.g. spiffe://example.org/ns/shop/sa/orders',
    DIR_HELP,
    '  --ttl DURATION          lifetime: s, m, h or d (default 4h); never beyond the CA\'s own expiry',
    '  --out DIR               where to write the files (default: the current directory)',
    '  --name NAME             base name of the files: NAME.crt, NAME.key (default svid)',
    '',
    'The certificate has an empty subject and one URI SAN (as Istio issues them), and works for',
    'TLS client and server authentication. bundle.pem is copied next to it. Run it again to renew.',
  ].join('\n'),
  options: {
    'spiffe-id': { type: 'string' },
    dir: { type: 'string' },
    ttl: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
  },
};

export const CA_ISSUE_SERVER: CommandSpec = {
  path: ['ca', 'issue-server'],
  summary: "issue the certificate meshgate's own TLS listener presents",
  usage: '[--dir DIR] [--dns NAMES] [--ip ADDRS] [--spiffe-id ID] [--ttl 90d] [--out DIR] [--name server]',
  help: [
    DIR_HELP,
    '  --dns NAMES             DNS names clients connect to, comma-separated or repeated',
    '  --ip ADDRS              IP addresses clients connect to, comma-separated or repeated',
    '                          (with neither --dns nor --ip: localhost, 127.0.0.1 and ::1)',
    "  --spiffe-id ID          also put meshgate's own SPIFFE ID in the certificate",
    "  --ttl DURATION          lifetime: s, m, h or d (default 90d); never beyond the CA's own expiry",
    '  --out DIR               where to write the files (default: the current directory)',
    '  --name NAME             base name of the files: NAME.crt, NAME.key (default server)',
  ].join('\n'),
  options: {
    dir: { type: 'string' },
    dns: { type: 'string', multiple: true },
    ip: { type: 'string', multiple: true },
    'spiffe-id': { type: 'string' },
    ttl: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
  },
};

export const CA_ROTATE: CommandSpec = {
  path: ['ca', 'rotate'],
  summary: 'make a new CA root the issuer; earlier roots stay trusted until what they signed expires',
  usage: '[--dir DIR] [--ttl 365d] [--max-svid-ttl 4h] [--prune-only]',
  help: [
    DIR_HELP,
    '  --ttl DURATION          how long the new root is valid: s, m, h or d (default 365d)',
    '  --max-svid-ttl DURATION how long to keep a root whose issuances ca.json never recorded',
    '                          (a CA created before rotation support; default 4h)',
    '  --prune-only            create no root; only drop earlier roots whose certificates have all expired',
    '',
    'The previous key and root move to retired/ (mode 0600). bundle.pem keeps each earlier root',
    'until the latest notAfter it signed (recorded in ca.json at every issuance), so certificates',
    'from both roots verify during the overlap. Every rotation also prunes; run --prune-only later',
    'to drop roots as they run out. Re-issue workload certificates after rotating, and make sure',
    'meshgate and workloads have reloaded bundle.pem before the old root is pruned.',
  ].join('\n'),
  options: {
    dir: { type: 'string' },
    ttl: { type: 'string' },
    'max-svid-ttl': { type: 'string' },
    'prune-only': { type: 'boolean' },
  },
};
