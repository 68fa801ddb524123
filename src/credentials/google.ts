/**
 * Credentials for the Google upstream (Firestore). In development, the emulator's `owner`
 * token. In production, a short-lived OAuth access token for the Google service account
 * policy maps the caller to, minted by impersonation (IAM Credentials generateAccessToken)
 * from meshgate's own identity (Application Default Credentials: Workload Identity on GKE).
 * Tokens are cached per service account and renewed five minutes before they expire; the
 * caller never sees one.
 */
import diagnostics from 'node:diagnostics_channel';
import { GoogleAuth, Impersonated, type AuthClient } from 'google-auth-library';
import { asMeshgateError, mgError } from '../errors/index.ts';

/** Each token minted or not, for metrics (`{ outcome: 'success' | 'failure' }`, the same two objects every time). */
export const TOKEN_FETCH_CHANNEL = 'meshgate:credentials:token_fetch';
const tokenFetches = diagnostics.channel(TOKEN_FETCH_CHANNEL);
const MINTED = Object.freeze({ outcome: 'success' });
const NOT_MINTED = Object.freeze({ outcome: 'failure' });

export interface UpstreamAuth {
  /** The `authorization` header value for a call on behalf of this Google service account (null: none mapped). */
  authorization(serviceAccount: string | null): Promise<string>;
  /** The same when it is at hand without waiting (a cached token), so the call opens at once. */
  cached(serviceAccount: string | null): string | null;
}

/** The emulator accepts any project and trusts `Bearer owner` as an administrator. */
export const emulatorAuth: UpstreamAuth = {
  authorization: async () => 'Bearer owner',
  cached: () => 'Bearer owner',
};

export const DATASTORE_SCOPE = 'https://www.googleapis.com/auth/datastore';
const RENEW_BEFORE_MS = 5 * 60_000;

export interface GoogleAuthOptions {
  /** meshgate's own credentials; default Application Default Credentials. */
  readonly sourceClient?: AuthClient;
  /** IAM Credentials API; overridden only by tests. */
  readonly endpoint?: string;
  /** Token lifetime asked for, in seconds (max 3600 without an org policy). */
  readonly lifetimeSeconds?: number;
  readonly now?: () => number;
}

interface Cached {
  readonly header: string;
  readonly expiresAt: number;
}

export function googleUpstreamAuth(options: GoogleAuthOptions = {}): UpstreamAuth {
  const now = options.now ?? Date.now;
  const cache = new Map<string, Cached>();
  const inFlight = new Map<string, Promise<Cached>>();
  let source: Promise<AuthClient> | null = options.sourceClient === undefined ? null : Promise.resolve(options.sourceClient);

  const mint = async (serviceAccount: string): Promise<Cached> => {
    source ??= new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getClient();
    const client = new Impersonated({
      sourceClient: await source,
      targetPrincipal: serviceAccount,
      targetScopes: [DATASTORE_SCOPE],
      lifetime: options.lifetimeSeconds ?? 3600,
      delegates: [],
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    });
    try {
      const { token } = await client.getAccessToken();
      if (typeof token !== 'string' || token === '') throw new Error('no access token in the answer');
      const expiry = client.credentials.expiry_date;
      if (tokenFetches.hasSubscribers) tokenFetches.publish(MINTED);
      return { header: `Bearer ${token}`, expiresAt: typeof expiry === 'number' ? expiry : now() + (options.lifetimeSeconds ?? 3600) * 1000 };
    } catch (error) {
      if (tokenFetches.hasSubscribers) tokenFetches.publish(NOT_MINTED);
      throw mgError(
        'MG_UPSTREAM_AUTH_FAILED',
        `cannot get a Firestore token for ${serviceAccount} (${asMeshgateError(error).message.split('\n')[0]}); grant meshgate's own service account roles/iam.serviceAccountTokenCreator on it`,
        error,
      );
    }
  };

  const fresh = (serviceAccount: string): string | null => {
    const entry = cache.get(serviceAccount);
    return entry !== undefined && entry.expiresAt - RENEW_BEFORE_MS > now() ? entry.header : null;
  };
  return {
    cached: (serviceAccount) => (serviceAccount === null ? null : fresh(serviceAccount)),
    async authorization(serviceAccount) {
      if (serviceAccount === null) {
        throw mgError('MG_CONFIG_INVALID', 'the policy rule that allowed this call names no Google service account (to.firestore.serviceAccount); meshgate has no credentials to forward it with');
      }
      const header = fresh(serviceAccount);
      if (header !== null) return header;
      let pending = inFlight.get(serviceAccount);
      if (pending === undefined) {
        pending = mint(serviceAccount).finally(() => inFlight.delete(serviceAccount));
        inFlight.set(serviceAccount, pending);
      }
      const minted = await pending;
      cache.set(serviceAccount, minted);
      return minted.header;
    },
  };
}
