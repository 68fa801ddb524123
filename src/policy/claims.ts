/**
 * The token side of `from[].source`: `authMethods`/`notAuthMethods` and
 * `claims`/`notClaims`. Names and globs are compiled once; matching a claim reads at most
 * two properties and runs the glob set, so evaluate() parses nothing per call.
 *
 * Semantics (Istio's request.auth.claims, kept deliberately small):
 *  - `claims`: AND across names, OR within a name's list; a string claim matches by glob,
 *    a number or boolean by its string form, a list (groups) when any string/number/boolean
 *    element matches. An absent claim, or one of any other shape, never matches.
 *  - `notClaims`: the source fails when any named claim matches its list; so an absent
 *    claim always passes.
 *  - A name `a.b` means the top-level claim `a.b` when there is one, else `b` inside the
 *    object claim `a` (one level, no deeper).
 */
import { compileGlobSet, describeGlobSet, globMatches, type GlobSet } from './glob.ts';
import type { Subject } from './types.ts';

export interface ClaimCondition {
  readonly name: string;
  /** `a` and `b` of a dotted name `a.b` (split at the first dot), else null. */
  readonly head: string | null;
  readonly tail: string | null;
  readonly set: GlobSet;
}

type Claims = Readonly<Record<string, unknown>> | undefined;

export function compileClaims(map: Readonly<Record<string, readonly string[]>> | undefined): readonly ClaimCondition[] | null {
  if (map === undefined) return null;
  return Object.freeze(
    Object.entries(map).map(([name, patterns]) => {
      const dot = name.indexOf('.');
      const head = dot > 0 && dot < name.length - 1 ? name.slice(0, dot) : null;
      return Object.freeze({ name, head, tail: head === null ? null : name.slice(dot + 1), set: compileGlobSet(patterns) });
    }),
  );
}

export function compileAuthMethods(list: readonly string[] | undefined): ReadonlySet<string> | null {
  return list === undefined ? null : new Set(list);
}

// Own properties only: a claim named `constructor` or `toString` must not find
// Object.prototype's members and match as if the token carried them.
function own(object: unknown, key: string): unknown {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return undefined;
  return Object.hasOwn(object, key) ? (object as Record<string, unknown>)[key] : undefined;
}

/** The claim's value, or undefined when the subject does not carry it. */
export function claimValue(claims: Claims, condition: ClaimCondition): unknown {
  const top = own(claims, condition.name);
  if (top !== undefined || condition.head === null) return top;
  return own(own(claims, condition.head), condition.tail ?? '');
}

function scalarMatches(set: GlobSet, value: unknown): boolean {
  if (typeof value === 'string') return globMatches(set, value);
  if (typeof value === 'number' || typeof value === 'boolean') return globMatches(set, String(value));
  return false;
}

/** Whether a claim value matches a list; elements of a list count, nested lists do not. */
export function claimValueMatches(set: GlobSet, value: unknown): boolean {
  if (Array.isArray(value)) {
    for (const element of value) if (scalarMatches(set, element)) return true;
    return false;
  }
  return scalarMatches(set, value);
}

export function authMethodsHold(subject: Subject, only: ReadonlySet<string> | null, not: ReadonlySet<string> | null): boolean {
  const method = subject.authMethod;
  if (only !== null && (method === undefined || !only.has(method))) return false;
  if (not !== null && method !== undefined && not.has(method)) return false;
  return true;
}

export function claimsHold(subject: Subject, claims: readonly ClaimCondition[] | null, notClaims: readonly ClaimCondition[] | null): boolean {
  if (claims !== null) {
    for (const c of claims) if (!claimValueMatches(c.set, claimValue(subject.claims, c))) return false;
  }
  if (notClaims !== null) {
    for (const c of notClaims) if (claimValueMatches(c.set, claimValue(subject.claims, c))) return false;
  }
  return true;
}

/** For rule descriptions and DENY reasons, e.g. `claim environment in production`. */
export function describeClaims(conditions: readonly ClaimCondition[], negated: boolean): string {
  return conditions.map((c) => `claim ${c.name} ${negated ? 'not in' : 'in'} ${describeGlobSet(c.set)}`).join(' and ');
}

// ---- words for explain(): why a condition failed. Claim values are the issuer's word and
// may be long or odd, so they are cut to 80 characters and quoted unless plainly printable.

const MAX_VALUE = 80;
const MAX_ELEMENTS = 5;
const PLAIN = /^[\x21-\x7e]+$/;

export function showClaimText(text: string): string {
  const cut = text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
  return PLAIN.test(text) && text.length <= MAX_VALUE && !text.includes(',') ? cut : JSON.stringify(cut);
}

function showValue(value: unknown): string {
  if (Array.isArray(value)) {
    const shown = value.slice(0, MAX_ELEMENTS).map(showValue);
    const more = value.length > MAX_ELEMENTS ? [`… ${value.length - MAX_ELEMENTS} more`] : [];
    return `[${[...shown, ...more].join(', ')}]`;
  }
  if (typeof value === 'string') return showClaimText(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  return `(${typeof value === 'object' ? 'an object' : typeof value})`;
}

function absent(subject: Subject, name: string): string {
  if (subject.claims === undefined) return `the caller has no claims (auth method ${subject.authMethod ?? 'unknown'}), so it has no claim ${name}`;
  return `the token has no claim ${name}`;
}

/** Why the source's auth-method or claim conditions fail, or null when they hold. */
export function tokenMismatch(
  subject: Subject,
  only: ReadonlySet<string> | null,
  not: ReadonlySet<string> | null,
  claims: readonly ClaimCondition[] | null,
  notClaims: readonly ClaimCondition[] | null,
): string | null {
  const method = subject.authMethod;
  if (only !== null && (method === undefined || !only.has(method))) {
    const list = [...only].join(', ');
    return method === undefined ? `the caller's auth method is unknown, and the rule needs authMethods ${list}` : `auth method ${method} is not in authMethods ${list}`;
  }
  if (not !== null && method !== undefined && not.has(method)) return `auth method ${method} is in notAuthMethods ${[...not].join(', ')}`;
  for (const c of claims ?? []) {
    const value = claimValue(subject.claims, c);
    if (claimValueMatches(c.set, value)) continue;
    const list = describeGlobSet(c.set);
    if (value === undefined) return `${absent(subject, c.name)}, and the rule needs ${c.name} in ${list}`;
    if (Array.isArray(value)) {
      if (value.length === 0) return `claim ${c.name} is an empty list, and the rule needs an element in ${list}`;
      return `claim ${c.name}=${showValue(value)} has no element in ${list}`;
    }
    return `claim ${c.name}=${showValue(value)} is not in ${list}`;
  }
  for (const c of notClaims ?? []) {
    const value = claimValue(subject.claims, c);
    if (!claimValueMatches(c.set, value)) continue;
    const list = describeGlobSet(c.set);
    if (Array.isArray(value)) {
      const hit = value.find((element) => scalarMatches(c.set, element));
      return `claim ${c.name} has element ${showValue(hit)} in notClaims ${list}`;
    }
    return `claim ${c.name}=${showValue(value)} is in notClaims ${list}`;
  }
  return null;
}
