/**
 * The SVID signing endpoint `serve` runs where the config has a `signer` section: it issues
 * short-lived SVIDs to workloads that prove themselves with a service-account token, a join
 * token or their current SVID.
 */
import type { MeshgateConfig } from './config/schema.ts';
import { mgError } from './errors/index.ts';
import { JoinTokenStore, startSigningEndpoint, type SigningEndpoint, type TokenVerifier } from './identity/index.ts';
import type { Logger } from './log.ts';

export function startSigner(config: MeshgateConfig, tokens: TokenVerifier | undefined, log: Logger): Promise<SigningEndpoint> {
  const signer = config.signer!;
  if (config.tls === undefined) throw new TypeError("the signer needs meshgate's certificate (config tls); the config schema requires it");
  // Only workload identities get SVIDs: a Kubernetes service account (or a JWT-SVID of the
  // same shape), never a CI job or a person holding an OIDC token.
  const workloadToken = async (token: string) => {
    const identity = await tokens!.verify(token);
    if (identity.namespace === null || identity.serviceAccount === null) {
      throw mgError('MG_TOKEN_CLAIMS_INVALID', 'SVIDs are issued to workloads: present a Kubernetes service-account token');
    }
    return identity;
  };
  return startSigningEndpoint({
    host: signer.host,
    port: signer.port,
    caDir: signer.caDir,
    tls: { cert: config.tls.cert, key: config.tls.key },
    svidTtlSeconds: signer.svidTtlSeconds,
    renewWithSvid: signer.renewWithSvid,
    issuancesPerMinute: signer.issuancesPerMinute,
    log,
    ...(tokens === undefined ? {} : { verifyToken: workloadToken }),
    ...(signer.joinTokens ? { joinTokens: new JoinTokenStore(signer.caDir) } : {}),
  });
}
