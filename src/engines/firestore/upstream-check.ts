/**
 * The Firestore upstream at start: a configured emulator must accept connections; for
 * Google, meshgate's own credentials must give an access token (the tokens it forwards are
 * minted from them). A launched emulator needs no check: it is started with the engine.
 */
import { connect } from 'node:net';
import { GoogleAuth } from 'google-auth-library';
import type { UpstreamCheck, UpstreamProblem } from '../../upstream-checks.ts';
import { classifyLoginFailure } from '../mysql/login-failure.ts';
import type { FirestoreConfig } from './start.ts';

export interface FirestoreCheckOptions {
  /** meshgate's own Google access token; replaced only by tests. */
  readonly googleToken?: () => Promise<string>;
  readonly timeoutMs?: number;
}

export function firestoreUpstreamCheck(config: FirestoreConfig, options: FirestoreCheckOptions = {}): UpstreamCheck {
  const timeoutMs = options.timeoutMs ?? 5000;
  const upstream = config.upstream;
  if ('emulator' in upstream) return { run: () => emulatorAnswers(upstream.emulator, timeoutMs) };
  if ('google' in upstream) {
    const token = options.googleToken ?? ownGoogleToken;
    return { run: () => googleTokenMintable(upstream.google.endpoint, token, timeoutMs * 2) };
  }
  return { run: async () => [] };
}

async function emulatorAnswers(address: string, timeoutMs: number): Promise<UpstreamProblem[]> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  const error = await new Promise<Error | null>((resolve) => {
    const socket = connect({ host, port });
    const done = (result: Error | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => done(null));
    socket.once('error', done);
  });
  if (error === null) return [];
  const failure = classifyLoginFailure(error);
  const start = `start it (gcloud emulators firestore start --host-port=${address}), or let meshgate launch one: firestore.upstream: { launchEmulator: {} }`;
  const problem =
    failure.kind === 'nothing-listening'
      ? `nothing listens on ${address} (${failure.detail}), the Firestore emulator firestore.upstream.emulator names`
      : failure.kind === 'unknown-host'
        ? `cannot resolve ${host} (${failure.detail}), the Firestore emulator's host in firestore.upstream.emulator`
        : `the Firestore emulator at ${address} does not answer (${failure.detail})`;
  return [{ upstream: 'firestore', address, account: null, code: 'MG_UPSTREAM_UNAVAILABLE', upstreamError: failure.upstreamError, problem, fix: start, transient: true }];
}

async function googleTokenMintable(endpoint: string, token: () => Promise<string>, timeoutMs: number): Promise<UpstreamProblem[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([token(), timeout]);
    return [];
  } catch (error) {
    return [
      {
        upstream: 'firestore',
        address: endpoint,
        account: "meshgate's own Google credentials",
        code: 'MG_UPSTREAM_AUTH_FAILED',
        upstreamError: null,
        problem: `meshgate cannot get a Google access token with its own credentials (${String((error as Error)?.message ?? error).split('\n')[0]})`,
        fix:
          'run meshgate as a Google service account (Workload Identity on GKE, or GOOGLE_APPLICATION_CREDENTIALS) ' +
          'that has roles/iam.serviceAccountTokenCreator on the service accounts the policy names',
        // On GKE the metadata server can lag a starting pod.
        transient: true,
      },
    ];
  } finally {
    clearTimeout(timer);
  }
}

async function ownGoogleToken(): Promise<string> {
  const token = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getAccessToken();
  if (typeof token !== 'string' || token === '') throw new Error('no access token in the answer');
  return token;
}
