/**
 * From `throttle.shared` to a connected SharedRates: reads the URL secret, names this replica,
 * and connects (falling back to local when Redis does not answer; never rejects for that).
 * Apart from shared-rates.ts so that file knows nothing of configuration.
 */
import { readSecret } from '../config/load.ts';
import type { Logger } from '../log.ts';
import type { SharedSettings } from './settings.ts';
import { redactedUrl, SharedRates } from './shared-rates.ts';

export interface SharedRatesFor {
  readonly logger?: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** This replica's name among those sharing limits (default: host name and pid). */
  readonly replicaId?: string;
}

/**
 * The SharedRates `throttle.shared` asks for, connected; undefined when the section has none.
 * Throws MG_CONFIG_INVALID only when the URL secret cannot be read. Close it at shutdown.
 */
export async function sharedRatesFor(shared: SharedSettings | null, options: SharedRatesFor = {}): Promise<SharedRates | undefined> {
  if (shared === null) return undefined;
  const url = typeof shared.url === 'string' ? shared.url : readSecret(shared.url, 'throttle.shared.redis.url', options.env);
  return SharedRates.connect({
    url,
    keyPrefix: shared.keyPrefix,
    timeoutMs: shared.timeoutMs,
    describe: redactedUrl(url),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.replicaId === undefined ? {} : { replicaId: options.replicaId }),
  });
}
