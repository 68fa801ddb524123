/**
 * The admin HTTP API: short-lived MariaDB credentials for callers that connect directly
 * (CI jobs), and lease administration. HTTPS only, with meshgate's listener certificate;
 * JSON in and out; bodies of at most 64 KiB; `{ error: { code, message } }` on failure, with
 * the status of the error's kind (401 unauthenticated, 403 denied, 400 bad request, 404
 * unknown lease, 413 body too large, 429 limit, 503 unavailable, 500 config/internal).
 *
 *   GET  /healthz                  → 200 { ok: true }
 *   GET  /readyz                   → 200 { ready: true }, or 503 { ready: false, notReady: { policy?, upstream?, audit? } }
 *   GET  /metrics                  → Prometheus text; any verified client certificate (a scraper's SVID);
 *                                  404 MG_METRICS_OFF without a metrics section
 *   POST /v1/creds                 { token?, database, ttl? } → 201 { host, port, username, password, database, leaseId, expiresAt, ... }
 *                                  The token may come as `Authorization: Bearer` instead; without
 *                                  one, a verified client certificate is the identity. Policy decides:
 *                                  only a rule with `direct: true` grants these. Per identity, a cap
 *                                  on live ones and an issue rate: 429 MG_DIRECT_CREDS_LIMIT, Retry-After.
 *   GET  /v1/leases[?all=1]        → 200 { leases: [...] }               admin principals only
 *   POST /v1/leases/revoke         { leaseId | principal | role, reason? } → 200 { revoked: [...] }
 *   POST /v1/admin/rotate-root     → 200 { rotated: true, user, file }
 *   GET  /v1/traces?traceId=HEX32  → 200 { spans: [...] }  the spans this replica ended lately in that
 *                                  trace: a caller sees its own (meshgate probe), an admin all; 404
 *                                  MG_TRACING_OFF without tracing
 *
 * Admin routes need a client certificate (an X.509-SVID that chains to the trust bundles, in
 * a trusted trust domain) whose SPIFFE ID is in `admins`: none → 401, another → 403
 * MG_ADMIN_UNAUTHORIZED. Tokens and passwords are never logged; a password is in exactly one
 * place, the body of the 201 that hands it out. Every issue, revoke and rotation, refused or
 * done, is a credential audit event (trail.ts).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { asMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { listenTlsPerConnection, sendError, sendJson, type Listening } from '../transport/http/index.ts';
import { tlsFactsOf, verifyTlsPeer, watchTlsMaterial, type Identity, type TlsMaterial } from '../identity/index.ts';
import type { CompiledPolicy } from '../policy/index.ts';
import { readJsonObject, statusOf, stringField } from './http.ts';
import { isThrottledError, LimitExceededError, type RateLimiter, type Throttle } from '../throttle/index.ts';
import { ALL_STATES, authorizeAndIssue, describeSelector, LIVE_STATES, leaseView, principalSelector, ttlMsOf, type AdminAccount, type IssueTrail, type LeaseOperations, type UpstreamAddress } from './issue.ts';
import { ADMIN_RULE, CredentialTrail, type CredentialAudit } from './trail.ts';
import type { ProbeRoute } from '../telemetry/metrics/probes.ts';

export { MAX_ADMIN_BODY_BYTES } from './http.ts';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export const ADMIN_ROUTES = {
  health: '/healthz',
  ready: '/readyz',
  metrics: '/metrics',
  creds: '/v1/creds',
  leases: '/v1/leases',
  revoke: '/v1/leases/revoke',
  rotateRoot: '/v1/admin/rotate-root',
  traces: '/v1/traces',
  policy: '/v1/policy',
  policyReload: '/v1/policy/reload',
} as const;

export interface AdminLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface AdminApiOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /**
   * meshgate's certificate and key plus the trust bundles client certificates must chain to:
   * as files (watched and reloaded), or the listener's already-loaded material (shared, not closed here).
   */
  readonly tls: { readonly cert: string; readonly key: string; readonly bundles: readonly string[] } | TlsMaterial;
  /** Trust domains whose client certificates are accepted (trust.trustDomains). */
  readonly trustDomains: readonly string[];
  /** SPIFFE IDs allowed on the admin routes (admin.principals). */
  readonly admins: readonly string[];
  readonly leases: LeaseOperations;
  readonly policy: CompiledPolicy | (() => CompiledPolicy);
  /** A TokenVerifier's verify; without it bearer tokens are refused (client certificates still work). */
  readonly verifyToken?: (token: string) => Promise<Identity>;
  /** Where issued credentials connect: the upstream MariaDB. */
  readonly upstream: UpstreamAddress;
  /** The spans this replica ended lately in a trace; absent: tracing is off. */
  readonly recentSpans?: (traceId: string) => readonly { readonly identity: string | null }[];
  /** Rotates meshgate's MariaDB admin password; without it rotate-root answers 500. */
  readonly rotateAdmin?: () => Promise<void>;
  /** Named in the rotate-root answer: whose password changed and which file holds it now (never the password). */
  readonly adminAccount?: AdminAccount;
  /** Direct-credential issues per identity (upstream.credentials.issuedPerMinute); absent: no rate. */
  readonly issueRate?: RateLimiter;
  /** The service classes: an issue counts as a login of the deciding rule's class. */
  readonly throttle?: Throttle;
  /**
   * The audit recorder: where credential events go (absent: none are recorded), and its
   * availability: while it cannot record, every operation that changes something (each POST)
   * is refused with 503 MG_AUDIT_UNAVAILABLE before it starts.
   */
  readonly audit?: CredentialAudit & { refusal?(): MeshgateError | null };
  readonly log?: AdminLog;
  readonly now?: () => Date;
  /** /readyz and, with metrics configured, /metrics (src/telemetry/metrics/probes.ts). */
  readonly probes?: { readonly ready?: ProbeRoute; readonly metrics?: ProbeRoute };
  /**
   * Loads the policy again and puts it in force when valid and changed (PolicyReloader); absent:
   * POST /v1/policy/reload answers that this meshgate cannot reload.
   */
  readonly reloadPolicy?: (by: Identity) => Promise<PolicyReloadOutcome>;
}

/** What POST /v1/policy/reload answers (a ReloadResult). */
export type PolicyReloadOutcome =
  | { readonly outcome: 'completed' | 'unchanged'; readonly version: string; readonly rules: number }
  | { readonly outcome: 'refused'; readonly version: string; readonly error: MeshgateError };

export type AdminApi = Listening;

type Route = (req: IncomingMessage, res: ServerResponse, remote: string | undefined) => Promise<void>;
type AuditedRoute = (req: IncomingMessage, res: ServerResponse, remote: string | undefined, trail: CredentialTrail) => Promise<void>;

const CREDS_SHAPE = '{ "database": "<name>", "ttl": "15m" } with the token in "token" or Authorization: Bearer';
const REVOKE_SHAPE = '{ "leaseId": "lease_..." } or { "principal": "spiffe://...", "role": "..." }, with an optional "reason"';

function isTlsMaterial(tls: AdminApiOptions['tls']): tls is TlsMaterial {
  return typeof (tls as TlsMaterial).secureContext === 'function';
}

/** What a caller may read of an error: details of server-side faults stay in the log. */
function publicMessage(error: MeshgateError, status: number): string {
  if (status < 500 || error.code === 'MG_LEASE_ROLE_UNKNOWN') return error.message;
  return `meshgate cannot do this right now (${error.code}); retry later, or ask its operator: the server log has the details`;
}

/** Starts the API; rejects when the TLS files do not load or the port is taken. */
export async function startAdminApi(options: AdminApiOptions): Promise<AdminApi> {
  const log = options.log;
  const now = options.now ?? (() => new Date());
  const policy = typeof options.policy === 'function' ? options.policy : () => options.policy as CompiledPolicy;
  const ownsMaterial = !isTlsMaterial(options.tls);
  const material = isTlsMaterial(options.tls)
    ? options.tls
    : await watchTlsMaterial({
        certFile: options.tls.cert,
        keyFile: options.tls.key,
        bundleFiles: options.tls.bundles,
        contextOptions: { minVersion: 'TLSv1.2', sessionIdContext: 'meshgate-admin' },
        ...(log === undefined ? {} : { log }),
      });

  function peerIdentity(req: IncomingMessage): Identity {
    return verifyTlsPeer(tlsFactsOf(req.socket as TLSSocket), { trustDomains: options.trustDomains, now: now() });
  }

  function admin(req: IncomingMessage, trail?: CredentialTrail): Identity {
    const identity = peerIdentity(req);
    if (trail !== undefined) trail.identity = identity;
    if (!options.admins.includes(identity.spiffeId)) {
      const configured = options.admins.length === 0 ? 'none are configured: add it to admin.principals' : 'add it to admin.principals to allow it';
      throw mgError('MG_ADMIN_UNAUTHORIZED', `${identity.spiffeId} is not an admin principal of this meshgate (${configured})`);
    }
    trail?.allow(ADMIN_RULE);
    return identity;
  }

  /** An operation on credentials: whatever ends it, the trail ends in audit events. */
  function audited(action: CredentialTrail['action'], run: AuditedRoute): Route {
    return async (req, res, remote) => {
      const port = req.socket?.remotePort;
      const trail = new CredentialTrail(options.audit, action, remote === undefined || port === undefined ? null : { address: remote, port });
      try {
        await run(req, res, remote, trail);
      } catch (error) {
        trail.failed(asMeshgateError(error));
        throw error;
      }
    };
  }

  async function caller(req: IncomingMessage, bodyToken: string | undefined): Promise<Identity> {
    const header = req.headers.authorization;
    let token = bodyToken;
    if (header !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(header);
      if (match === null) throw mgError('MG_TOKEN_INVALID', 'the Authorization header must be "Bearer <token>"');
      if (token !== undefined && token !== match[1]) throw mgError('MG_USAGE', 'send the token once: in "token" or in Authorization: Bearer, not two different ones');
      token = match[1] as string;
    }
    if (token !== undefined) {
      if (options.verifyToken === undefined) {
        throw mgError('MG_TOKEN_ISSUER_UNKNOWN', 'this meshgate trusts no token issuers (no tokens section in its config); present a client certificate instead');
      }
      return options.verifyToken(token);
    }
    if ((req.socket as TLSSocket).getPeerX509Certificate() !== undefined) return peerIdentity(req);
    throw mgError('MG_TOKEN_INVALID', 'no credential: send the token in "token" or as Authorization: Bearer <token>, or present a client certificate');
  }

  const issueCreds: AuditedRoute = async (req, res, remote, trail) => {
    const body = await readJsonObject(req, CREDS_SHAPE);
    const identity = await caller(req, stringField(body, 'token', CREDS_SHAPE));
    trail.identity = identity;
    trail.asked = { principal: identity.spiffeId };
    const database = stringField(body, 'database', CREDS_SHAPE);
    if (database === undefined) throw mgError('MG_USAGE', `"database" is required; send ${CREDS_SHAPE}`);
    trail.asked = { ...trail.asked, database };
    const ttl = body['ttl'];
    let ttlMs: number | undefined;
    if (typeof ttl === 'number') {
      if (!Number.isInteger(ttl) || ttl <= 0) throw mgError('MG_USAGE', '"ttl" must be a duration such as "15m", or a whole number of seconds');
      ttlMs = ttl * 1000;
    } else if (ttl !== undefined && ttl !== null) {
      if (typeof ttl !== 'string') throw mgError('MG_USAGE', '"ttl" must be a duration such as "15m", or a whole number of seconds');
      ttlMs = ttlMsOf(ttl, '"ttl"');
    }
    trail.asked = { ...trail.asked, ttlMs: ttlMs ?? null };
    const steps: IssueTrail = {};
    let issued;
    try {
      issued = await authorizeAndIssue({ identity, database, ttlMs, policy: policy(), leases: options.leases, upstream: options.upstream, rate: options.issueRate, throttle: options.throttle, now: () => now().getTime(), trail: steps });
    } catch (error) {
      const refused = asMeshgateError(error);
      if (refused.code === 'MG_POLICY_DENIED') log?.info('credential refused by policy', { principal: identity.spiffeId, database, error: refused.message, remote });
      throw error;
    } finally {
      const decision = steps.decision;
      if (decision?.allow === true) trail.allow(decision.ruleId);
      else trail.rule = decision?.ruleId ?? null;
      if (decision?.role != null) trail.asked = { ...trail.asked, role: decision.role };
      if (decision !== undefined) trail.policyVersion = decision.policyVersion;
    }
    log?.info('issued a credential', { lease: issued.leaseId, principal: issued.principal, role: issued.role, database, expiresAt: issued.expiresAt, remote });
    trail.done(steps.lease === undefined ? [] : [steps.lease], steps.decision?.reason ?? 'issued');
    sendJson(res, 201, issued);
  };

  const listLeases: Route = async (req, res) => {
    admin(req);
    const all = new URL(req.url ?? '/', 'https://admin').searchParams.get('all');
    const everything = all !== null && all !== '0' && all !== 'false';
    const leases = await options.leases.list({ states: everything ? ALL_STATES : LIVE_STATES });
    sendJson(res, 200, { leases: leases.map(leaseView) });
  };

  const revoke: AuditedRoute = async (req, res, remote, trail) => {
    const by = admin(req, trail);
    const body = await readJsonObject(req, REVOKE_SHAPE);
    const leaseId = stringField(body, 'leaseId', REVOKE_SHAPE);
    const principal = stringField(body, 'principal', REVOKE_SHAPE);
    const role = stringField(body, 'role', REVOKE_SHAPE);
    if (leaseId === undefined && principal === undefined && role === undefined) throw mgError('MG_USAGE', `say which leases to revoke: ${REVOKE_SHAPE}`);
    if (leaseId !== undefined && (principal !== undefined || role !== undefined)) throw mgError('MG_USAGE', `a lease id names one lease already; send it alone: ${REVOKE_SHAPE}`);
    const selector = {
      ...(leaseId === undefined ? {} : { leaseId }),
      ...(principal === undefined ? {} : { principal: principalSelector(principal) }),
      ...(role === undefined ? {} : { role }),
    };
    trail.asked = { leaseId: leaseId ?? null, principal: selector.principal ?? null, role: role ?? null };
    const reason = stringField(body, 'reason', REVOKE_SHAPE) ?? `revoked by ${by.spiffeId} through the admin API`;
    const revoked = await options.leases.revoke(selector, reason);
    log?.info('revoked leases', { by: by.spiffeId, selector: describeSelector(selector), leases: revoked.map((l) => l.id), remote });
    trail.done(revoked, revoked.length === 0 ? `nothing to revoke: no active lease matches ${describeSelector(selector)}` : reason);
    sendJson(res, 200, { revoked: revoked.map(leaseView) });
  };

  const rotateRoot: AuditedRoute = async (req, res, remote, trail) => {
    trail.asked = { account: options.adminAccount?.user ?? null };
    const by = admin(req, trail);
    await readJsonObject(req, '{}');
    if (options.rotateAdmin === undefined) throw mgError('MG_CONFIG_INVALID', 'the admin API was started without admin-credential rotation');
    await options.rotateAdmin();
    log?.info('rotated the admin credential', { by: by.spiffeId, remote });
    trail.done([], `rotated by ${by.spiffeId} through the admin API`);
    sendJson(res, 200, { rotated: true, ...(options.adminAccount ?? {}) });
  };

  const health: Route = async (_req, res) => sendJson(res, 200, { ok: true });

  const ready: Route = async (req, res) => {
    if (options.probes?.ready === undefined) throw mgError('MG_CONFIG_INVALID', 'the admin API was started without readiness checks');
    await options.probes.ready(req, res);
  };

  // Metrics name rules and roles: for callers the trust bundle vouches for, not for anyone.
  const metrics: Route = async (req, res) => {
    peerIdentity(req);
    if (options.probes?.metrics === undefined) throw mgError('MG_METRICS_OFF', 'this meshgate keeps no metrics: add a metrics section to its config');
    await options.probes.metrics(req, res);
  };

  const traces: Route = async (req, res) => {
    const identity = peerIdentity(req);
    const traceId = new URL(req.url ?? '/', 'https://admin').searchParams.get('traceId') ?? '';
    if (!/^[0-9a-f]{32}$/.test(traceId)) throw mgError('MG_USAGE', 'name the trace: GET /v1/traces?traceId=<32 lower-case hex digits>');
    if (options.recentSpans === undefined) throw mgError('MG_TRACING_OFF', 'this meshgate traces nothing: add a tracing section to its config');
    const all = options.admins.includes(identity.spiffeId);
    // Spans name callers and statements: a caller sees its own, an admin everyone's.
    sendJson(res, 200, { spans: options.recentSpans(traceId).filter((span) => all || span.identity === identity.spiffeId) });
  };

  // Admins only: the version and rule count say which access this replica grants.
  const policyInfo: Route = async (req, res) => {
    admin(req);
    const current = policy();
    sendJson(res, 200, { version: current.version, rules: current.ruleCount, sources: current.sources });
  };

  const policyReload: Route = async (req, res, remote) => {
    const by = admin(req);
    await readJsonObject(req, '{}');
    if (options.reloadPolicy === undefined) throw mgError('MG_CONFIG_INVALID', 'this meshgate was started without policy reloads');
    const result = await options.reloadPolicy(by);
    log?.info('policy reload through the admin API', { by: by.spiffeId, remote, outcome: result.outcome, version: result.version });
    // A refused version is the policy's fault, not the request's: 422 with the loader's reason.
    if (result.outcome === 'refused') throw result.error;
    sendJson(res, 200, result);
  };

  const routes: Readonly<Record<string, { method: string; run: Route }>> = {
    [ADMIN_ROUTES.health]: { method: 'GET', run: health },
    [ADMIN_ROUTES.ready]: { method: 'GET', run: ready },
    [ADMIN_ROUTES.metrics]: { method: 'GET', run: metrics },
    [ADMIN_ROUTES.creds]: { method: 'POST', run: audited('issue', issueCreds) },
    [ADMIN_ROUTES.leases]: { method: 'GET', run: listLeases },
    [ADMIN_ROUTES.revoke]: { method: 'POST', run: audited('revoke', revoke) },
    [ADMIN_ROUTES.rotateRoot]: { method: 'POST', run: audited('rotate', rotateRoot) },
    [ADMIN_ROUTES.traces]: { method: 'GET', run: traces },
    [ADMIN_ROUTES.policy]: { method: 'GET', run: policyInfo },
    [ADMIN_ROUTES.policyReload]: { method: 'POST', run: policyReload },
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const remote = req.socket?.remoteAddress;
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route === undefined) {
      sendError(res, 404, { code: 'MG_USAGE', message: `no such route; the admin API serves ${Object.entries(routes).map(([p, r]) => `${r.method} ${p}`).join(', ')}` });
      return;
    }
    if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
      sendError(res, 405, { code: 'MG_USAGE', message: `use ${route.method} ${path}` }, { allow: route.method });
      return;
    }
    const unavailable = route.method === 'POST' ? (options.audit?.refusal?.() ?? null) : null;
    const run = unavailable === null ? route.run(req, res, remote) : Promise.reject(unavailable);
    run.catch((thrown: unknown) => {
      const error = asMeshgateError(thrown);
      const status = statusOf(error);
      const fields = { route: path, code: error.code, error: error.message, remote };
      if (status >= 500) log?.warn('admin API request failed', error.code === 'MG_INTERNAL' ? { ...fields, cause: String(error.cause ?? thrown) } : fields);
      else log?.info('admin API request refused', fields);
      // A refused upload is not drained: the connection goes after the answer.
      const headers: Record<string, string> =
        error.code === 'MG_PACKET_TOO_LARGE'
          ? { connection: 'close' }
          : error instanceof LimitExceededError
            ? { 'retry-after': String(error.retryAfterSeconds) }
            : isThrottledError(error) && error.retryAfterMs !== null
              ? { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) }
              : {};
      sendError(res, status, { code: error.code, message: publicMessage(error, status) }, headers);
    });
  }

  const httpServer = createHttpServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS },
    handle,
  );
  const listener = await listenTlsPerConnection({
    host: options.host,
    port: options.port,
    secureContext: () => material.secureContext(),
    requestCert: true,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    onConnection: (tlsSocket) => httpServer.emit('connection', tlsSocket),
  }).catch((error: unknown) => {
    if (ownsMaterial) material.close();
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw mgError('MG_CONFIG_INVALID', `the admin API cannot listen on ${options.host}:${options.port} (${code}); choose another admin.port`, error);
  });
  const port = listener.port;
  log?.info('admin API listening', { host: options.host, port, admins: options.admins.length });
  return {
    port,
    close: async () => {
      if (ownsMaterial) material.close();
      httpServer.closeAllConnections();
      await listener.close();
    },
  };
}
