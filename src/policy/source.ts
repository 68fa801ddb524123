import type { CompiledPolicy, LoadedPolicy } from './types.ts';

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

/**
 * The policy in force, replaced whole: a decision reads one version from start to end, since
 * a compiled policy never changes after compilation and the swap is one assignment.
 */
export class SwappablePolicy implements PolicySource {
  #current: LoadedPolicy;

  constructor(initial: LoadedPolicy) {
    this.#current = initial;
  }

  current(): LoadedPolicy {
    return this.#current;
  }

  /** Puts `next` in force; returns the version it replaced. */
  swap(next: LoadedPolicy): LoadedPolicy {
    const previous = this.#current;
    this.#current = next;
    return previous;
  }
}
