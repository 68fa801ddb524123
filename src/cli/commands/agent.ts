/**
 * `meshgate agent`: keeps a workload's SVID fresh on disk, with a key made on the workload
 * (identity/agent/loop.ts); and `meshgate ca join-token`, the credential for workloads that
 * have no Kubernetes service-account token to prove themselves with.
 */
import { resolve } from 'node:path';
import { isMeshgateError } from '../../errors/index.ts';
import { AGENT_EXIT, runAgent, type AgentCredential, type AgentDeps, type RetryPolicy } from '../../identity/agent/loop.ts';
import { SVID_FILE_NAME } from '../../identity/agent/files.ts';
import { formatDuration, parseDuration } from '../../identity/duration.ts';
import { DEFAULT_JOIN_TOKEN_TTL_SECONDS, isJoinTokenShaped, JoinTokenStore } from '../../identity/signer/join-tokens.ts';
import { optionalString, requireString, UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';

const DEFAULT_CA_DIR = '.meshgate/ca';

/** What tests (and embedders) may replace: retry pacing, the clock, and the stop signal. */
export interface AgentCommandOptions extends Omit<AgentDeps, 'log'> {
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
}

function endpointOf(values: OptionValues): URL {
  const text = requireString(values, 'endpoint');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--endpoint ${JSON.stringify(text)} is not a URL; give https://<meshgate host>:<signer port>`);
  }
  // The token and the certificate travel over this connection: never in clear text.
  if (url.protocol !== 'https:') throw new UsageError(`--endpoint must be an https:// URL (got ${url.protocol}//)`);
  if (url.username !== '' || url.password !== '') throw new UsageError('--endpoint must not carry credentials; use --token-file or --join-token');
  return url;
}

function credentialOf(values: OptionValues, io: CliIO): AgentCredential {
  const tokenFile = optionalString(values, 'token-file');
  const joinToken = optionalString(values, 'join-token');
  if (tokenFile !== undefined && joinToken !== undefined) throw new UsageError('give either --token-file or --join-token, not both');
  if (joinToken !== undefined) {
    if (!isJoinTokenShaped(joinToken) || !/^[\x21-\x7e]+$/.test(joinToken)) {
      throw new UsageError('--join-token must be a token printed by `meshgate ca join-token` (it starts with mgjoin_)');
    }
    return { kind: 'join-token', token: joinToken };
  }
  if (tokenFile !== undefined) return { kind: 'token-file', path: resolve(io.cwd, tokenFile) };
  throw new UsageError('give --token-file (a projected service-account token) or --join-token (from `meshgate ca join-token`)');
}

/** Builds `meshgate agent`; the exported command uses the real clock, signals and retry pacing. */
export function createAgentCommand(defaults: AgentCommandOptions = {}): CliCommand {
  return {
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
    async run(values, _positionals, io) {
      const endpoint = endpointOf(values);
      const caBundleFile = resolve(io.cwd, requireString(values, 'ca-bundle'));
      const outDir = resolve(io.cwd, requireString(values, 'out'));
      const name = optionalString(values, 'name') ?? 'svid';
      if (!SVID_FILE_NAME.test(name)) throw new UsageError(`--name ${JSON.stringify(name)} must be a plain file name (letters, digits, '.', '-', '_')`);
      const credential = credentialOf(values, io);

      // SIGTERM/SIGINT stop the loop between steps; a write under way completes first.
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      const external = defaults.signal;
      if (external === undefined) {
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      } else if (external.aborted) stop.abort();
      else external.addEventListener('abort', onSignal, { once: true });
      try {
        const result = await runAgent(
          {
            endpoint,
            caBundleFile,
            outDir,
            name,
            credential,
            once: values['once'] === true,
            ...(defaults.retry === undefined ? {} : { retry: defaults.retry }),
            ...(defaults.timeoutMs === undefined ? {} : { timeoutMs: defaults.timeoutMs }),
          },
          {
            ...defaults,
            signal: stop.signal,
            log: { info: (line) => io.out(`meshgate agent: ${line}`), warn: (line) => io.err(`meshgate agent: ${line}`) },
          },
        );
        if (result.error !== null) io.err(`meshgate agent: ${result.error.toString()}`);
        else if (stop.signal.aborted) io.out('meshgate agent: stopped; the files on disk stay valid until their notAfter');
        return result.exitCode;
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        external?.removeEventListener('abort', onSignal);
      }
    },
  };
}

const joinToken: CliCommand = {
  path: ['ca', 'join-token'],
  summary: 'create a one-time token a workload trades for its first SVID (meshgate agent --join-token)',
  usage: '--spiffe-id ID [--dir DIR] [--ttl 1h]',
  help: [
    "  --spiffe-id ID          the identity the token's holder gets, in the CA's trust domain,",
    '                          e.g. spiffe://example.org/ns/ci/sa/runner',
    `  --dir DIR               the CA directory (default ${DEFAULT_CA_DIR})`,
    `  --ttl DURATION          how long the token may wait for its use: s, m, h or d (default ${formatDuration(DEFAULT_JOIN_TOKEN_TTL_SECONDS)}, at most 7d)`,
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
  async run(values, _positionals, io) {
    const spiffeId = requireString(values, 'spiffe-id');
    const ttlSeconds = parseDuration(optionalString(values, 'ttl') ?? formatDuration(DEFAULT_JOIN_TOKEN_TTL_SECONDS), '--ttl');
    const store = new JoinTokenStore(resolve(io.cwd, optionalString(values, 'dir') ?? DEFAULT_CA_DIR));
    try {
      const created = await store.create({ spiffeId, ttlSeconds });
      io.out(created.token);
      io.err(`meshgate ca join-token: a one-time token for ${created.spiffeId}, valid until ${created.expires.toISOString()}`);
      io.err(`next: meshgate agent --endpoint https://<meshgate>:<port> --ca-bundle <bundle.pem> --out <dir> --join-token <token>`);
      return 0;
    } catch (error) {
      // The CLI reports MeshgateErrors; an ID that does not parse is a usage mistake here.
      if (isMeshgateError(error) && error.code === 'MG_SPIFFE_ID_INVALID') throw new UsageError(`--spiffe-id: ${error.message}`);
      throw error;
    }
  },
};

export const agentCommand: CliCommand = createAgentCommand();

export const agentCommands: readonly CliCommand[] = [agentCommand, joinToken];
export { AGENT_EXIT };
