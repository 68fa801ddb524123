/**
 * The agent's side of `POST /v1/svid` (signer/endpoint.ts): one HTTPS request, its answer
 * sorted into what the agent does next. Nothing here retries or sleeps (loop.ts does); every
 * failure is a value saying whether trying again can help, never a thrown error.
 */
import https from 'node:https';
import { SVID_ROUTE } from '../signer/http.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A certificate and a bundle of a few roots: far below this. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface SvidRequest {
  /** https://host:port[/v1/svid] */
  readonly endpoint: URL;
  /** PEM roots that sign the endpoint's own certificate. */
  readonly caPem: string;
  readonly csrPem: string;
  /** A service-account token or join token, sent as `Authorization: Bearer`. */
  readonly bearer?: string;
  /** The current SVID, presented to renew when there is no token (join-token agents). */
  readonly clientCert?: { readonly certPem: string; readonly keyPem: string };
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface IssuedSvid {
  readonly certificatePem: string;
  readonly bundlePem: string;
  readonly notAfter: Date;
  readonly spiffeId: string;
  readonly serialNumber: string;
}

/**
 * unreachable/busy: try again later. refused: the credential was not accepted. untrusted:
 * the endpoint's certificate does not verify. protocol: the two sides disagree on the API.
 */
export type FailureKind = 'unreachable' | 'busy' | 'refused' | 'untrusted' | 'protocol' | 'aborted';

export interface SvidFailure {
  readonly kind: FailureKind;
  readonly status: number | null;
  /** The endpoint's MG_* code, or a Node error code such as ECONNREFUSED. */
  readonly code: string;
  readonly message: string;
}

export type SvidOutcome = { readonly ok: true; readonly svid: IssuedSvid } | { readonly ok: false; readonly failure: SvidFailure };

export function svidUrl(endpoint: URL): URL {
  const url = new URL(endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = SVID_ROUTE;
  return url;
}

// OpenSSL verification results as Node reports them: the endpoint is not who --ca-bundle trusts.
const UNTRUSTED = /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_|ERR_SSL_.*CERTIFICATE)/;

function fail(kind: FailureKind, code: string, message: string, status: number | null = null): SvidOutcome {
  return { ok: false, failure: { kind, status, code, message } };
}

function kindOfStatus(status: number): FailureKind {
  if (status === 401 || status === 403) return 'refused';
  if (status === 429 || status >= 500) return 'busy';
  return 'protocol';
}

function parseAnswer(status: number, text: string): SvidOutcome {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail(status === 200 ? 'protocol' : kindOfStatus(status), `HTTP_${status}`, `the endpoint answered HTTP ${status} with a body that is not JSON (is --endpoint a meshgate signing endpoint?)`, status);
  }
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (status !== 200) {
    const error = (typeof record['error'] === 'object' && record['error'] !== null ? record['error'] : {}) as Record<string, unknown>;
    const code = typeof error['code'] === 'string' ? error['code'].slice(0, 64) : `HTTP_${status}`;
    const message = typeof error['message'] === 'string' ? error['message'].slice(0, 1000) : `HTTP ${status}`;
    return fail(kindOfStatus(status), code, message, status);
  }
  const { certificate, bundle, notAfter, spiffeId, serialNumber } = record;
  const expiry = typeof notAfter === 'string' ? new Date(notAfter) : new Date(Number.NaN);
  if (typeof certificate !== 'string' || typeof bundle !== 'string' || Number.isNaN(expiry.getTime())) {
    return fail('protocol', 'MG_SIGNER_RESPONSE_INVALID', 'the endpoint answered 200 without certificate, bundle and notAfter', status);
  }
  return {
    ok: true,
    svid: {
      certificatePem: certificate,
      bundlePem: bundle,
      notAfter: expiry,
      spiffeId: typeof spiffeId === 'string' ? spiffeId : '',
      serialNumber: typeof serialNumber === 'string' ? serialNumber : '',
    },
  };
}

/** Sends one CSR; resolves with the certificate or a classified failure, never rejects. */
export function requestSvid(request: SvidRequest): Promise<SvidOutcome> {
  const url = svidUrl(request.endpoint);
  const timeoutMs = request.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const body = JSON.stringify({ csr: request.csrPem });
  const options: https.RequestOptions = {
    method: 'POST',
    ca: request.caPem,
    ...(request.clientCert === undefined ? {} : { cert: request.clientCert.certPem, key: request.clientCert.keyPem }),
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(request.bearer === undefined ? {} : { authorization: `Bearer ${request.bearer}` }),
    },
    // A fresh connection each time: renewals are hours apart, and a pooled socket would
    // keep presenting the previous client certificate.
    agent: false,
    timeout: timeoutMs,
  };
  let req: ReturnType<typeof https.request>;
  try {
    req = https.request(url, options);
  } catch (error) {
    // Thrown at once for what the agent itself supplies (a header, a certificate it holds).
    const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
    return Promise.resolve(fail('protocol', code, `the request could not be built: ${(error as Error).message}`));
  }
  return new Promise((resolve) => {
    let settled = false;
    const onAbort = (): void => {
      done(fail('aborted', 'ABORTED', 'stopped'));
      req.destroy();
    };
    const done = (outcome: SvidOutcome): void => {
      if (settled) return;
      settled = true;
      request.signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted === true) return onAbort();
    const timedOut = (what: string) => (): void => {
      done(fail('unreachable', 'ETIMEDOUT', `${what} within ${timeoutMs} ms`));
      req.destroy();
    };
    // The socket timeout covers connect and every idle gap; the deadline a slow trickle.
    req.on('timeout', timedOut('no answer'));
    const deadline = setTimeout(timedOut('no complete answer'), timeoutMs);
    deadline.unref();
    req.on('close', () => clearTimeout(deadline));
    req.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'ERROR';
      if (UNTRUSTED.test(code)) {
        done(fail('untrusted', code, `the endpoint's TLS certificate does not verify against --ca-bundle (${code}: ${error.message})`));
      } else {
        done(fail('unreachable', code, error.message));
      }
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          done(fail('protocol', 'MG_SIGNER_RESPONSE_INVALID', `the endpoint's answer is larger than ${MAX_RESPONSE_BYTES} bytes`, res.statusCode ?? null));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => done(parseAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
      res.on('error', (error: NodeJS.ErrnoException) => done(fail('unreachable', error.code ?? 'ERROR', error.message)));
    });
    req.end(body);
  });
}
