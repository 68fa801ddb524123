/**
 * The throttle stage as the configuration asks for it: the service classes (shared through
 * Redis with `throttle.shared`), the upstream connection budget, and a reload of their limits.
 * Without a `throttle` section nothing is limited and nothing is paid.
 */
import type { MeshgateConfig } from '../config/schema.ts';
import { mgError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_SERVICE_CLASS } from '../policy/index.ts';
import { ClassThrottle, type ClassSnapshot } from './class-throttle.ts';
import { throttleSettings } from './settings.ts';
import { sharedRatesFor } from './shared-connect.ts';
import type { SharedRates, SharedRatesState } from './shared-rates.ts';
import type { Throttle } from './types.ts';
import { UpstreamBudget } from './upstream-budget.ts';
import { admitEverything } from './admit-everything.ts';

export interface Throttling {
  readonly throttle: Throttle;
  readonly upstreamBudget: UpstreamBudget | null;
  readonly firestoreStreams: UpstreamBudget | null;
  /** Each class's counts, for metrics; null without a throttle section. */
  classes(): readonly ClassSnapshot[] | null;
  /** Whether rates are shared through Redis now; null when they are not configured to be. */
  shared(): SharedRatesState | null;
  /** New limits from a reloaded config; throws MG_CONFIG_INVALID, changing nothing, when they cannot apply. */
  reload(next: MeshgateConfig): string;
  /**
   * A reloaded policy's service classes: throws MG_POLICY_INVALID when one is not in the
   * config (its callers would have no limits), so that policy is refused and the last kept.
   */
  checkPolicyClasses(classes: readonly string[]): void;
  close(): Promise<void>;
}

export interface ThrottlingDeps {
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
  /** The service classes the policy's rules name: each must be defined. */
  readonly policyClasses: readonly string[];
  readonly replicaId?: string | undefined;
}

export async function throttlingFor(config: MeshgateConfig, deps: ThrottlingDeps): Promise<Throttling> {
  const named = deps.policyClasses.filter((name) => name !== DEFAULT_SERVICE_CLASS);
  const section = config.throttle;
  if (section === undefined) {
    if (named.length > 0) deps.log.warn(`policy rules name service classes (${named.join(', ')}) but the config has no throttle section: nothing is limited`);
    return {
      throttle: admitEverything,
      upstreamBudget: null,
      firestoreStreams: null,
      classes: () => null,
      shared: () => null,
      reload: (next) => {
        if (next.throttle !== undefined) throw mgError('MG_CONFIG_INVALID', 'adding the throttle section takes a restart');
        return 'no throttle section before or now: nothing to change';
      },
      checkPolicyClasses: () => undefined,
      close: async () => undefined,
    };
  }
  undefinedClasses(named, section, 'throttle.classes');
  // What a config reload must keep defining, and what a policy reload may name: both change.
  let policyClasses = named;
  let classesNow = section.classes;
  const settings = throttleSettings(section);
  const rates: SharedRates | undefined = await sharedRatesFor(settings.shared, { logger: deps.log, env: deps.env, ...(deps.replicaId === undefined ? {} : { replicaId: deps.replicaId }) });
  const throttle = new ClassThrottle(settings, rates === undefined ? {} : { rates });
  const upstreamBudget = settings.upstream === null ? null : new UpstreamBudget(settings);
  const firestoreStreams = settings.firestore === null ? null : new UpstreamBudget(settings, { streams: true });
  return {
    throttle,
    upstreamBudget,
    firestoreStreams,
    classes: () => throttle.snapshot(),
    shared: () => rates?.state ?? null,
    checkPolicyClasses(classes) {
      const unknown = classes.filter((name) => name !== DEFAULT_SERVICE_CLASS && !Object.hasOwn(classesNow, name));
      if (unknown.length > 0) throw mgError('MG_POLICY_INVALID', `the policy names service class(es) ${unknown.join(', ')}, which throttle.classes does not define: add them to the config (SIGHUP reloads it) or correct the rules`);
      // The reloader checks this last, right before the swap: these are the classes in force now.
      policyClasses = classes.filter((name) => name !== DEFAULT_SERVICE_CLASS);
    },
    reload(next) {
      if (next.throttle === undefined) throw mgError('MG_CONFIG_INVALID', 'removing the throttle section takes a restart; change the limits of its classes to reload them');
      undefinedClasses(policyClasses, next.throttle, 'the new throttle.classes');
      if ((upstreamBudget === null) !== (next.throttle.upstream === undefined)) {
        throw mgError('MG_CONFIG_INVALID', 'adding or removing throttle.upstream takes a restart; change its numbers to reload them');
      }
      if ((firestoreStreams === null) !== (next.throttle.firestore === undefined)) {
        throw mgError('MG_CONFIG_INVALID', 'adding or removing throttle.firestore takes a restart; change its numbers to reload them');
      }
      if ((rates === undefined) !== (next.throttle.shared === undefined)) {
        throw mgError('MG_CONFIG_INVALID', 'adding or removing throttle.shared takes a restart');
      }
      const nextSettings = throttleSettings(next.throttle);
      throttle.update(nextSettings);
      upstreamBudget?.update(nextSettings);
      firestoreStreams?.update(nextSettings);
      classesNow = next.throttle.classes;
      return `service class limits reloaded: ${Object.keys(next.throttle.classes).join(', ')}`;
    },
    async close() {
      throttle.close();
      upstreamBudget?.close();
      firestoreStreams?.close();
      // Gives unspent leased tokens back to the other replicas.
      await rates?.close();
    },
  };
}

function undefinedClasses(named: readonly string[], section: NonNullable<MeshgateConfig['throttle']>, where: string): void {
  const unknown = named.filter((name) => !Object.hasOwn(section.classes, name));
  if (unknown.length > 0) {
    throw mgError('MG_CONFIG_INVALID', `policy rules name service class(es) ${unknown.join(', ')}, which ${where} does not define: add them to the config or correct the rules`);
  }
}
