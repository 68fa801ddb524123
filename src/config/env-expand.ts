/**
 * `${env:NAME}` in a configuration string is the environment's value, as Kubernetes hands a
 * pod its own name (the downward API) or a Service's address: one file in a ConfigMap then
 * serves every replica. The OpenTelemetry Collector's spelling, so operators read it at sight.
 * `${env:NAME:-fallback}` gives a value for an unset variable; `$${` is a literal `${`.
 * Secrets keep their own `{ env: NAME }` / `{ file: PATH }` form: a value expanded here may be
 * echoed by a validation error, a secret must never be.
 */
import type { ConfigProblem } from './describe.ts';

const REFERENCE = /\$(\$?)\{([^}]*)\}/g;
const ENV_REFERENCE = /^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** What an unset variable without a fallback is: a problem (serve), or left as written (tools reading only the file's shape). */
export type UnsetReference = 'refuse' | 'keep';

export interface Expanded {
  readonly value: unknown;
  readonly problems: readonly ConfigProblem[];
}

/** A copy of `raw` with every string's references replaced; mappings and lists keep their shape (so line positions still apply). */
export function expandEnvReferences(raw: unknown, env: NodeJS.ProcessEnv, unset: UnsetReference = 'refuse'): Expanded {
  const problems: ConfigProblem[] = [];
  const visit = (node: unknown, path: readonly PropertyKey[]): unknown => {
    if (typeof node === 'string') return node.includes('${') ? expandString(node, env, unset, path, problems) : node;
    if (Array.isArray(node)) return node.map((item, index) => visit(item, [...path, index]));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, visit(value, [...path, key])]));
    }
    return node;
  };
  return { value: visit(raw, []), problems };
}

function expandString(text: string, env: NodeJS.ProcessEnv, unset: UnsetReference, path: readonly PropertyKey[], problems: ConfigProblem[]): string {
  return text.replace(REFERENCE, (whole, escaped: string, inside: string) => {
    if (escaped === '$') return whole.slice(1);
    const reference = ENV_REFERENCE.exec(inside);
    if (reference === null) {
      problems.push({ path, message: `\${${inside}} is not a reference meshgate knows; write \${env:NAME} for an environment variable, or $\${…} for a literal \${…}` });
      return whole;
    }
    const [, name, fallback] = reference as unknown as [string, string, string | undefined];
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    if (unset === 'keep') return whole;
    problems.push({ path, message: `environment variable ${name} (\${env:${name}}) is not set (or empty); set it in the pod (e.g. from the downward API) or give a fallback: \${env:${name}:-value}` });
    return whole;
  });
}
