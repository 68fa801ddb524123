/**
 * The certificate-signing endpoint `meshgate agent` talks to: HTTPS, one route,
 * `POST /v1/svid` with `{ "csr": "<PEM>" }`. The caller proves who it is with
 * `Authorization: Bearer <token>` (a Kubernetes service-account token verified against the
 * cluster's JWKS, or a one-time join token), or, to renew, by presenting its current SVID as
 * a TLS client certificate. The SPIFFE ID is taken from that proof alone; the CSR only proves
 * possession of the key (csr.ts). Answers `{ certificate, bundle, notAfter, spiffeId,
 * serialNumber }`, or `{ error: { code, message } }` with a status that says whose move it
 * is: 4xx the caller's, 503 retry later. Tokens are never echoed or logged.
 */
import { X509Certificate } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { asMeshgateError, isMeshgateError, mgError } from '../../errors/index.ts';
import { listenTlsPerConnection, sendError, sendJson, type Listening } from '../../transport/http/index.ts';
import { DEFAULT_SVID_TTL_SECONDS } from '../ca-issue.ts';
import { caPaths, loadCa } from '../ca-store.ts';
import { verifyTlsPeer } from '../peer.ts';
import { watchTlsMaterial, type TlsMaterialLog } from '../tls-material.ts';
import type { Identity } from '../types.ts';
import { verifyCsr } from './csr.ts';
import { chainVerificationError } from '../tls-verdict.ts';
import { csrOf, readRequest, statusOf, SVID_ROUTE } from './http.ts';
import { isJoinTokenShaped, type JoinTokenStore } from './join-tokens.ts';
import { DEFAULT_ISSUANCES_PER_MINUTE, RateLimiter, serialQueue } from './limits.ts';
import { signSvidForKey } from './sign.ts';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const MAX_QUEUED_ISSUANCES = 64;
const LOCK_TIMEOUT_MS = 5000;

export interface SigningEndpointOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** meshgate's server certificate and key files; reloaded when they change. */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly caDir: string;
  /** Lifetime of issued SVIDs; default DEFAULT_SVID_TTL_SECONDS (four hours). */
  readonly svidTtlSeconds?: number;
  /** A TokenVerifier's verify; without it bearer JWTs are refused. */
  readonly verifyToken?: (token: string) => Promise<Identity>;
  /** Without it join tokens are refused. */
  readonly joinTokens?: JoinTokenStore;
  /** Let a workload renew by presenting its current, unexpired SVID from this CA. Default true. */
  readonly renewWithSvid?: boolean;
  /** Default DEFAULT_ISSUANCES_PER_MINUTE per SPIFFE ID. */
  readonly issuancesPerMinute?: number;
  /** How long a request waits for the CA lock before 503 MG_CA_BUSY; default 5 s. */
  readonly caLockTimeoutMs?: number;
  readonly log?: TlsMaterialLog;
  readonly now?: () => Date;
}

export type SigningEndpoint = Listening;

/** Who asked, and how they proved it; `joinToken` is redeemed only if a certificate is issued. */
interface Caller {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly method: 'jwt' | 'join-token' | 'svid';
  readonly joinToken?: string;
}

export { MAX_REQUEST_BYTES, SVID_ROUTE } from './http.ts';

/** Starts the endpoint; rejects when the CA or the TLS files cannot be loaded. */
export async function startSigningEndpoint(options: SigningEndpointOptions): Promise<SigningEndpoint> {
  const svidTtlSeconds = options.svidTtlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
  if (!Number.isInteger(svidTtlSeconds) || svidTtlSeconds <= 0) throw new TypeError('svidTtlSeconds must be a positive integer');
  const now = options.now ?? (() => new Date());
  const log = options.log;
  // Fails fast on a missing or damaged CA; its trust domain is what SVID renewals must carry.
  const trustDomain = (await loadCa(options.caDir)).metadata.trustDomain;
  // The CA's bundle is the client-certificate trust for renewals, reloaded after a rotation.
  const material = await watchTlsMaterial({
    certFile: options.tls.cert,
    keyFile: options.tls.key,
    bundleFiles: [caPaths(options.caDir).bundle],
    contextOptions: { minVersion: 'TLSv1.2', sessionIdContext: 'meshgate-signer' },
    ...(log === undefined ? {} : { log }),
  });
  const perMinute = options.issuancesPerMinute ?? DEFAULT_ISSUANCES_PER_MINUTE;
  const limiter = new RateLimiter(perMinute);
  const oneAtATime = serialQueue(MAX_QUEUED_ISSUANCES);

  /**
   * bundle.pem may also carry roots an operator added by hand (another mesh's, say); only the
   * CA's own roots, current or retained, may vouch for a renewal.
   */
  async function issuedByCa(cert: X509Certificate): Promise<boolean> {
    const ca = await loadCa(options.caDir);
    const roots = [ca.certPem, ...ca.metadata.roots.filter((r) => r.pruned === null).map((r) => r.certificate)];
    return roots.some((pem) => {
      const root = new X509Certificate(pem);
      return cert.checkIssued(root) && cert.verify(root.publicKey);
    });
  }

  async function authenticate(req: IncomingMessage): Promise<Caller> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(header);
      if (match === null) throw mgError('MG_TOKEN_INVALID', 'the Authorization header must be "Bearer <token>"');
      const token = match[1] as string;
      if (isJoinTokenShaped(token)) {
        if (options.joinTokens === undefined) throw mgError('MG_JOIN_TOKEN_INVALID', 'this endpoint does not accept join tokens; use a service-account token');
        const spiffeId = await options.joinTokens.check(token, now());
        return { spiffeId, trustDomain, method: 'join-token', joinToken: token };
      }
      if (options.verifyToken === undefined) throw mgError('MG_TOKEN_INVALID', 'this endpoint does not accept JWTs; use a join token');
      const identity = await options.verifyToken(token);
      return { spiffeId: identity.spiffeId, trustDomain: identity.trustDomain, method: 'jwt' };
    }
    const socket = req.socket as TLSSocket;
    const cert = socket.getPeerX509Certificate?.() ?? null;
    if (cert !== null && options.renewWithSvid !== false) {
      const chainError = chainVerificationError(socket);
      const identity = verifyTlsPeer(
        { authorized: chainError === null, authorizationError: chainError, peerCertificate: cert, protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? null },
        { trustDomains: [trustDomain], now: now() },
      );
      if (!(await issuedByCa(cert))) {
        throw mgError('MG_CLIENT_CERT_UNTRUSTED', "the client certificate was not issued by meshgate's CA; only its own SVIDs renew this way: send a token instead");
      }
      return { spiffeId: identity.spiffeId, trustDomain: identity.trustDomain, method: 'svid' };
    }
    throw mgError('MG_TOKEN_INVALID', 'no credential: send "Authorization: Bearer <service-account token or join token>"');
  }

  async function issue(req: IncomingMessage, res: ServerResponse, remote: string | undefined): Promise<void> {
    const csr = csrOf(await readRequest(req));
    const caller = await authenticate(req);
    if (caller.trustDomain !== trustDomain) {
      throw mgError('MG_TRUST_DOMAIN_UNTRUSTED', `${caller.spiffeId} is in trust domain ${JSON.stringify(caller.trustDomain)}; this CA signs for ${JSON.stringify(trustDomain)} only`);
    }
    const { publicKey } = await verifyCsr(csr);
    const rate = limiter.take(caller.spiffeId, now().getTime());
    if (!rate.allowed) {
      const error = mgError('MG_SIGNER_RATE_LIMITED', `${caller.spiffeId} asked for more than ${perMinute} certificates in a minute; retry in ${rate.retryAfterSeconds} s`);
      log?.warn('signing request refused', { code: error.code, error: error.message, remote });
      sendError(res, 429, error, { 'retry-after': String(rate.retryAfterSeconds) });
      return;
    }
    const joinToken = caller.joinToken;
    const signed = await oneAtATime(() =>
      signSvidForKey({
        caDir: options.caDir,
        publicKey,
        spiffeId: caller.spiffeId,
        ttlSeconds: svidTtlSeconds,
        now: now(),
        lockTimeoutMs: options.caLockTimeoutMs ?? LOCK_TIMEOUT_MS,
        ...(joinToken === undefined || options.joinTokens === undefined
          ? {}
          : { underLock: async () => void (await options.joinTokens?.redeemLocked(joinToken, now())) }),
      }),
    );
    log?.info('issued an SVID', { spiffeId: signed.spiffeId, serial: signed.serialNumber, notAfter: signed.notAfter.toISOString(), proof: caller.method, remote });
    sendJson(res, 200, {
      certificate: signed.certificatePem,
      bundle: signed.bundlePem,
      notAfter: signed.notAfter.toISOString(),
      spiffeId: signed.spiffeId,
      serialNumber: signed.serialNumber,
    });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const remote = req.socket?.remoteAddress;
    const path = (req.url ?? '').split('?')[0];
    if (path !== SVID_ROUTE) {
      sendError(res, 404, { code: 'MG_SIGNER_REQUEST_INVALID', message: `no such route; the signing endpoint serves POST ${SVID_ROUTE}` });
      return;
    }
    if (req.method !== 'POST') {
      sendError(res, 405, { code: 'MG_SIGNER_REQUEST_INVALID', message: `use POST ${SVID_ROUTE}` }, { allow: 'POST' });
      return;
    }
    issue(req, res, remote).catch((thrown: unknown) => {
      const error = asMeshgateError(thrown);
      const status = statusOf(error);
      // The caller learns only that the CA cannot sign; paths and causes stay in the server log.
      const hidden = error.kind === 'config' || error.kind === 'internal';
      const message = hidden ? "meshgate's CA cannot issue right now; the server log has the details" : error.message;
      const fields = { code: error.code, error: error.message, remote };
      if (status >= 500) log?.warn('signing request failed', isMeshgateError(thrown) ? fields : { ...fields, cause: String(thrown) });
      else log?.info('signing request refused', fields);
      // A refused upload is not drained: the connection goes after the answer.
      sendError(res, status, { code: error.code, message }, error.code === 'MG_PACKET_TOO_LARGE' ? { connection: 'close' } : {});
    });
  }

  const httpServer = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, handle);
  const listener = await listenTlsPerConnection({
    host: options.host,
    port: options.port,
    secureContext: () => material.secureContext(),
    requestCert: options.renewWithSvid !== false,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    onConnection: (tlsSocket) => httpServer.emit('connection', tlsSocket),
  }).catch((error: unknown) => {
    material.close();
    throw error;
  });
  const port = listener.port;
  log?.info('signing endpoint listening', { host: options.host, port, route: SVID_ROUTE, svidTtlSeconds });
  return {
    port,
    close: async () => {
      material.close();
      httpServer.closeAllConnections();
      await listener.close();
    },
  };
}
