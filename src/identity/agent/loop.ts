/**
 * `meshgate agent`'s loop: get a certificate for a key made here, write it, sleep until half
 * its lifetime has passed, do it again with a new key. Clock, sleep, randomness and the
 * request are injectable, so the loop runs in tests without real time passing.
 *
 * Retries: the first certificate gets `retry.attempts` tries (nothing on disk depends on it
 * yet, and a fast non-zero exit lets the orchestrator restart and report). A renewal keeps
 * trying until the certificate on disk expires: the workload works throughout an outage.
 * A refused credential is never retried: the same token will be refused again.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { ERROR_CODES, mgError, type ErrorCode, type MeshgateError } from '../../errors/index.ts';
import { generateKeyAndCsr } from '../signer/csr.ts';
import { requestSvid, svidUrl, type IssuedSvid, type SvidFailure, type SvidOutcome, type SvidRequest } from './client.ts';
import { certificateProblem, svidPaths, writeSvidFiles, type SvidFiles } from './files.ts';

/** Exit statuses from sysexits.h, so scripts and orchestrators can tell failures apart. */
export const AGENT_EXIT = {
  ok: 0,
  usage: 2,
  /** EX_NOINPUT: the token file or the CA bundle cannot be read. */
  noInput: 66,
  /** EX_UNAVAILABLE: the endpoint could not be reached, or stayed busy, within the retries. */
  unavailable: 69,
  /** EX_CANTCREAT: the output files cannot be written. */
  cantCreate: 73,
  /** EX_PROTOCOL: the endpoint answered something the agent cannot use. */
  protocol: 76,
  /** EX_NOPERM: the endpoint refused the credential. */
  refused: 77,
  /** EX_CONFIG: the endpoint's certificate does not verify against --ca-bundle. */
  config: 78,
} as const;

export type AgentCredential = { readonly kind: 'token-file'; readonly path: string } | { readonly kind: 'join-token'; readonly token: string };

export interface RetryPolicy {
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** Six tries over about half a minute. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, initialDelayMs: 1000, maxDelayMs: 30_000 };
/** However short the certificate, renewals are at least this far apart. */
const MIN_RENEW_DELAY_MS = 1000;
const TOKEN_TEXT = /^[\x21-\x7e]+$/;
/** Long sleeps are taken in slices and the clock re-read, so a suspended machine renews on waking. */
const SLEEP_SLICE_MS = 60_000;

export interface AgentOptions {
  readonly endpoint: URL;
  readonly caBundleFile: string;
  readonly outDir: string;
  /** Base name of `<name>.crt` and `<name>.key`; default `svid`. */
  readonly name?: string;
  readonly credential: AgentCredential;
  readonly once?: boolean;
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
}

export interface WrittenSvid extends SvidFiles {
  readonly spiffeId: string;
  readonly serialNumber: string;
  readonly notAfter: Date;
  /** Null with `once`. */
  readonly renewAt: Date | null;
}

export interface AgentDeps {
  readonly now?: () => Date;
  /** Resolves after `ms`, or early when `signal` aborts. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly log?: { info(line: string): void; warn(line: string): void };
  /** Aborting stops the agent cleanly (SIGTERM): exit 0, files as last written. */
  readonly signal?: AbortSignal;
  readonly onWrite?: (written: WrittenSvid) => void;
  readonly request?: (request: SvidRequest) => Promise<SvidOutcome>;
}

export interface AgentResult {
  readonly exitCode: number;
  /** Null on success or when stopped. */
  readonly error: MeshgateError | null;
  /** Certificates written before the agent stopped. */
  readonly written: number;
}

interface Held {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

type Attempt =
  | { readonly ok: true; readonly svid: IssuedSvid; readonly keyPem: string }
  | { readonly ok: false; readonly aborted: boolean; readonly retryable: boolean; readonly exitCode: number; readonly error: MeshgateError };

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  } catch {
    // Aborted: the caller checks the signal.
  }
}

function failed(exitCode: number, code: ErrorCode, message: string, retryable = false): Attempt {
  return { ok: false, aborted: false, retryable, exitCode, error: mgError(code, message) };
}

export async function runAgent(options: AgentOptions, deps: AgentDeps = {}): Promise<AgentResult> {
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;
  const request = deps.request ?? requestSvid;
  const retry = options.retry ?? DEFAULT_RETRY;
  const { signal, log } = deps;
  const paths = svidPaths(options.outDir, options.name ?? 'svid');
  const url = svidUrl(options.endpoint);
  const credential = options.credential;
  /** What to check when the endpoint refuses what was presented. */
  const refusedHint = (renewingWithCertificate: boolean): string =>
    credential.kind === 'token-file'
      ? `; check that ${credential.path} is a projected service-account token with the audience meshgate accepts, from a cluster meshgate trusts`
      : renewingWithCertificate
        ? '; the endpoint would not renew the certificate the join token got: restart the agent with a new join token'
        : ''; // the endpoint's message already says what to do about a join token

  function classify(failure: SvidFailure, renewingWithCertificate = false): Attempt {
    const where = `the signing endpoint ${url.href}`;
    const said = failure.status === null ? `${failure.code}: ${failure.message}` : `HTTP ${failure.status}, [${failure.code}] ${failure.message}`;
    // Own keys only: an endpoint answering code "constructor" must not reach the registry's prototype.
    const serverCode = Object.hasOwn(ERROR_CODES, failure.code) ? (failure.code as ErrorCode) : null;
    switch (failure.kind) {
      case 'aborted':
        return { ok: false, aborted: true, retryable: false, exitCode: AGENT_EXIT.ok, error: mgError('MG_SIGNER_UNAVAILABLE', 'stopped') };
      case 'unreachable':
        return failed(AGENT_EXIT.unavailable, 'MG_SIGNER_UNAVAILABLE', `${where} could not be reached (${said}); check --endpoint, that meshgate serves its signing endpoint there, and the network in between`, true);
      case 'busy':
        return failed(AGENT_EXIT.unavailable, 'MG_SIGNER_UNAVAILABLE', `${where} cannot issue right now (${said}); if this persists, meshgate's log says why`, true);
      case 'refused':
        return failed(AGENT_EXIT.refused, serverCode ?? 'MG_TOKEN_INVALID', `${where} refused the credential: ${failure.message}${refusedHint(renewingWithCertificate)}`);
      case 'untrusted':
        return failed(AGENT_EXIT.config, 'MG_SIGNER_UNTRUSTED', `${failure.message}; pass as --ca-bundle the roots that signed meshgate's server certificate (its CA's bundle.pem)`);
      case 'protocol':
        return failed(AGENT_EXIT.protocol, serverCode ?? 'MG_SIGNER_RESPONSE_INVALID', `${where} could not be used (${said}); is --endpoint a meshgate signing endpoint, of a version that matches this agent?`);
    }
  }

  async function attemptOnce(held: Held | null): Promise<Attempt> {
    let bearer: string | undefined;
    let clientCert: Held | undefined;
    if (credential.kind === 'token-file') {
      // Re-read every time: kubelet rotates projected tokens well before they expire.
      try {
        bearer = (await readFile(credential.path, 'utf8')).trim();
      } catch (error) {
        return failed(AGENT_EXIT.noInput, 'MG_CONFIG_INVALID', `cannot read --token-file ${credential.path} (${(error as NodeJS.ErrnoException).code ?? String(error)}); mount the projected service-account token there`, held !== null);
      }
      // A header cannot carry line breaks or control characters; a JWT never has them.
      if (!TOKEN_TEXT.test(bearer)) {
        const what = bearer === '' ? 'is empty' : 'does not hold one token (a single line of printable characters)';
        return failed(AGENT_EXIT.noInput, 'MG_CONFIG_INVALID', `--token-file ${credential.path} ${what}; mount the projected service-account token there`, held !== null);
      }
    } else if (held === null) {
      bearer = credential.token;
    } else {
      clientCert = held; // the join token is spent: the certificate it got proves who we are
    }
    let caPem: string;
    try {
      caPem = await readFile(options.caBundleFile, 'utf8');
    } catch (error) {
      return failed(AGENT_EXIT.noInput, 'MG_CONFIG_INVALID', `cannot read --ca-bundle ${options.caBundleFile} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, held !== null);
    }
    const { keyPem, csrPem } = await generateKeyAndCsr();
    const outcome = await request({
      endpoint: url,
      caPem,
      csrPem,
      ...(bearer === undefined ? {} : { bearer }),
      ...(clientCert === undefined ? {} : { clientCert: { certPem: clientCert.certPem, keyPem: clientCert.keyPem } }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (!outcome.ok) return classify(outcome.failure, clientCert !== undefined);
    const problem = certificateProblem(outcome.svid.certificatePem, keyPem, outcome.svid.bundlePem);
    if (problem !== null) return failed(AGENT_EXIT.protocol, 'MG_SIGNER_RESPONSE_INVALID', `${problem}; nothing was written`);
    if (outcome.svid.notAfter.getTime() <= now().getTime()) {
      return failed(AGENT_EXIT.protocol, 'MG_SIGNER_RESPONSE_INVALID', `the certificate from ${url.href} expires at ${outcome.svid.notAfter.toISOString()}, before now (${now().toISOString()}); check the clocks of this machine and of meshgate`);
    }
    return { ok: true, svid: outcome.svid, keyPem };
  }

  async function obtain(held: Held | null): Promise<Attempt> {
    for (let attempt = 1; ; attempt++) {
      const result = signal?.aborted === true ? classify({ kind: 'aborted', status: null, code: 'ABORTED', message: 'stopped' }) : await attemptOnce(held);
      if (result.ok || !result.retryable) return result;
      const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
      const wait = Math.round(base / 2 + (random() * base) / 2);
      const exhausted = held === null ? attempt >= retry.attempts : now().getTime() + wait >= held.notAfter.getTime();
      if (exhausted) {
        const until = held === null ? `after ${attempt} attempts` : `before the certificate on disk expired at ${held.notAfter.toISOString()}`;
        return { ...result, error: mgError(result.error.code, `${result.error.message} (gave up ${until})`, result.error) };
      }
      const budget = held === null ? `attempt ${attempt} of ${retry.attempts}` : `the certificate on disk is valid until ${held.notAfter.toISOString()}`;
      log?.warn(`${result.error.toString()}; retrying in ${(wait / 1000).toFixed(1)} s (${budget})`);
      await sleep(wait, signal);
    }
  }

  async function sleepUntil(when: Date): Promise<boolean> {
    for (let left = when.getTime() - now().getTime(); left > 0 && signal?.aborted !== true; left = when.getTime() - now().getTime()) {
      await sleep(Math.min(left, SLEEP_SLICE_MS), signal);
    }
    return signal?.aborted !== true;
  }

  let held: Held | null = null;
  let written = 0;
  for (;;) {
    const result = await obtain(held);
    if (!result.ok) return result.aborted ? { exitCode: AGENT_EXIT.ok, error: null, written } : { exitCode: result.exitCode, error: result.error, written };
    const { svid, keyPem } = result;
    const receivedAt = now().getTime();
    try {
      await writeSvidFiles(paths, { keyPem, certPem: svid.certificatePem, bundlePem: svid.bundlePem });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      return { exitCode: AGENT_EXIT.cantCreate, error: mgError('MG_CONFIG_INVALID', `cannot write the certificate files in --out ${options.outDir} (${code}); make it writable by this user`, error), written };
    }
    written += 1;
    // Half of the lifetime left at receipt: notBefore is backdated for clock skew, so it would
    // make short certificates renew at once.
    const renewAt = options.once === true ? null : new Date(Math.max(receivedAt + MIN_RENEW_DELAY_MS, receivedAt + (svid.notAfter.getTime() - receivedAt) / 2));
    const next = renewAt === null ? '' : `; renewing at ${renewAt.toISOString()}`;
    log?.info(`wrote ${paths.certPath} for ${svid.spiffeId} (serial ${svid.serialNumber}), valid until ${svid.notAfter.toISOString()}${next}`);
    deps.onWrite?.({ ...paths, spiffeId: svid.spiffeId, serialNumber: svid.serialNumber, notAfter: svid.notAfter, renewAt });
    if (renewAt === null) return { exitCode: AGENT_EXIT.ok, error: null, written };
    held = { certPem: svid.certificatePem, keyPem, notAfter: svid.notAfter };
    if (!(await sleepUntil(renewAt))) return { exitCode: AGENT_EXIT.ok, error: null, written };
  }
}
