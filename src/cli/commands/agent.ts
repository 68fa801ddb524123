/**
 * `meshgate agent`: keeps a workload's SVID fresh on disk, with a key made on the workload
 * (identity/agent/loop.ts); and `meshgate ca join-token`, the credential for workloads that
 * have no Kubernetes service-account token to prove themselves with.
 */
import { resolve } from 'node:path';
import { isMeshgateError } from '../../errors/index.ts';
import { AGENT_EXIT, DEFAULT_JOIN_TOKEN_TTL_SECONDS, formatDuration, isJoinTokenShaped, JoinTokenStore, parseDuration, runAgent, SVID_FILE_NAME, type AgentCredential, type AgentDeps, type RetryPolicy } from '../../identity/index.ts';
import { optionalString, requireString, UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { AGENT, CA_JOIN_TOKEN } from '../specs/agent.ts';
import { DEFAULT_CA_DIR } from '../specs/ca.ts';

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
    ...AGENT,
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
  ...CA_JOIN_TOKEN,
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
