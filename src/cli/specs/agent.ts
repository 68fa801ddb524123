/**
 * What `meshgate agent` and `meshgate ca join-token` accept and say about themselves; the
 * commands are in ../commands/agent.ts.
 */
import type { CommandSpec } from '../command.ts';
import { DEFAULT_CA_DIR } from './ca.ts';

// identity/signer/join-tokens.ts owns these limits, but loading it loads the CA and its X.509
// library; test/unit/cli/specs.test.ts keeps the two in step.
export const JOIN_TOKEN_TTL_HELP = { default: '1h', max: '7d' } as const;

export const AGENT: CommandSpec = {
  path: ['agent'],
  summary: "keep this workload's SVID (certificate, key, trust bundle) fresh on disk",
  usage: '--endpoint URL --ca-bundle FILE --out DIR (--token-file FILE | --join-token TOKEN) [--name svid] [--once]',
  help: [
    "  --endpoint URL          meshgate's signing endpoint, https://<host>:<port>",
    "  --ca-bundle FILE        PEM roots that signed meshgate's server certificate (to trust the endpoint)",
    '  --out DIR               where to write NAME.key (mode 0600), NAME.crt and bundle.pem',
    '  --name NAME             base name of the certificate and key files (default svid)',
    '  --token-file FILE       a projected Kubernetes service-account token (audience meshgate), re-read',
    '                          at each renewal, e.g. /var/run/secrets/tokens/meshgate',
    '  --join-token TOKEN      a one-time token from `meshgate ca join-token`; renewals then present the',
    '                          certificate it got. It shows in process listings until spent: start the',
    '                          agent right after creating it',
    '  --once                  exit 0 after the first certificate is written (an init container)',
    '',
    'The private key is generated here and never leaves this machine; meshgate signs a CSR for it',
    'with the SPIFFE ID the token proves. Files are replaced atomically (key, bundle, then',
    'certificate), and renewed with a new key when half the lifetime has passed, so clients that',
    're-read their files pick the new certificate up. SIGTERM stops the agent (exit 0).',
    '',
    'Exit status: 0 done or stopped; 2 bad arguments; 66 the token file or CA bundle cannot be read;',
    '69 the endpoint cannot be reached (after retries; renewals retry until the certificate expires);',
    '73 the files cannot be written; 76 the endpoint answered something unusable; 77 the credential',
    "was refused; 78 the endpoint's certificate does not verify against --ca-bundle.",
  ].join('\n'),
  options: {
    endpoint: { type: 'string' },
    'ca-bundle': { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    'token-file': { type: 'string' },
    'join-token': { type: 'string' },
    once: { type: 'boolean' },
  },
};

export const CA_JOIN_TOKEN: CommandSpec = {
  path: ['ca', 'join-token'],
  summary: 'create a one-time token a workload trades for its first SVID (meshgate agent --join-token)',
  usage: '--spiffe-id ID [--dir DIR] [--ttl 1h]',
  help: [
    "  --spiffe-id ID          the identity the token's holder gets, in the CA's trust domain,",
    '                          e.g. spiffe://example.org/ns/ci/sa/runner',
    `  --dir DIR               the CA directory (default ${DEFAULT_CA_DIR})`,
    `  --ttl DURATION          how long the token may wait for its use: s, m, h or d (default ${JOIN_TOKEN_TTL_HELP.default}, at most ${JOIN_TOKEN_TTL_HELP.max})`,
    '',
    'Prints the token alone on stdout (details go to stderr), so TOKEN=$(meshgate ca join-token ...)',
    "works. Only its SHA-256 is stored, in the CA's join-tokens.json (mode 0600). The first",
    'certificate issued for it spends it; treat it like a password until then.',
  ].join('\n'),
  options: {
    'spiffe-id': { type: 'string' },
    dir: { type: 'string' },
    ttl: { type: 'string' },
  },
};
