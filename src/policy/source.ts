import type { CompiledPolicy } from './types.ts';

/**
 * Where engines get the policy in force. A getter, not a value: a reloaded policy applies to
 * the next decision without an engine knowing how it was loaded.
 */
export interface PolicySource {
  current(): CompiledPolicy;
}

/** A policy that does not change while meshgate runs (loaded once at start). */
export function fixedPolicy(policy: CompiledPolicy): PolicySource {
  return { current: () => policy };
}
