/**
 * meshgate's policy → the rules of the Istio AuthorizationPolicies on meshgate's workload.
 *
 * Two promises, in this order:
 * 1. L4 never blocks what meshgate allows. Where a condition cannot be written at L4 exactly,
 *    an ALLOW rule drops it (it widens) and a DENY rule is left out (meshgate denies at L7).
 * 2. Otherwise L4 says what meshgate says, so a caller meshgate would refuse is refused by the
 *    sidecar too, before it reaches meshgate's port.
 * meshgate stays the authority: it evaluates every request whatever the sidecar let through.
 *
 * Only a port whose TLS the sidecar terminates carries a principal Istio can match, and only
 * there (Firestore behind the sidecar, identity from XFCC) is the principal Istio sees the
 * identity meshgate decides on: the sidecar's x-forwarded-client-cert, auth method `xfcc`,
 * no token claims. So the translation below assumes exactly that caller.
 */
import type { PolicyDocument, PolicyRuleSpec, PolicySourceSpec } from '../policy/index.ts';
import type { MeshgatePort } from './ports.ts';

export interface IstioSource {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
}

export interface IstioCondition {
  key: string;
  values: string[];
}

export interface IstioRule {
  from?: { source: IstioSource }[];
  to: { operation: { ports: string[] } }[];
  when?: IstioCondition[];
}

/** A rule with the comment rendered above it in the YAML. */
export interface CommentedRule {
  readonly rule: IstioRule;
  readonly comment: string;
}

export interface L4Policies {
  readonly allow: readonly CommentedRule[];
  readonly deny: readonly CommentedRule[];
  /** What meshgate enforces that L4 does not, one line each, for the policy's comment. */
  readonly notes: readonly string[];
}

const SPIFFE = 'spiffe://';

/** Policy authors may write `spiffe://…`; Istio principals never carry the scheme. */
function istioPrincipal(pattern: string): string {
  return pattern.startsWith(SPIFFE) ? pattern.slice(SPIFFE.length) : pattern;
}

type Translation =
  | { readonly kind: 'never'; readonly why: string }
  | { readonly kind: 'skip'; readonly why: string }
  | { readonly kind: 'match'; readonly source: IstioSource; readonly when: IstioCondition[]; readonly notes: string[] };

/**
 * A trust domain pattern as a `source.principal` pattern: the principal is
 * `<trust domain>/<path>` and a trust domain holds no "/", so `td` is the prefix `td/*` and a
 * prefix `td*` stays a prefix. A suffix `*td` would need a "*" in the middle: not expressible.
 */
function trustDomainPattern(pattern: string): { readonly value: string } | 'any' | 'never' | 'inexpressible' {
  if (pattern === '*') return 'any';
  if (pattern.includes('/')) return 'never';
  if (pattern.startsWith('*')) return 'inexpressible';
  return { value: pattern.endsWith('*') ? pattern : `${pattern}/*` };
}

/**
 * One meshgate source as seen at an XFCC port. `action` decides what to do with what L4
 * cannot express exactly: an ALLOW widens, a DENY is skipped (or narrowed to what is exact).
 */
export function translateSource(source: PolicySourceSpec, action: 'ALLOW' | 'DENY'): Translation {
  if (source.authMethods !== undefined && !source.authMethods.includes('xfcc')) {
    return { kind: 'never', why: `it matches only ${source.authMethods.join(', ')} identities, and callers here are xfcc` };
  }
  if (source.notAuthMethods?.includes('xfcc') === true) return { kind: 'never', why: 'it excludes xfcc identities, and callers here are xfcc' };
  if (source.claims !== undefined) return { kind: 'never', why: 'only token (jwt) identities carry claims, and callers here are xfcc' };
  const notes: string[] = [];
  if (source.notClaims !== undefined) notes.push('notClaims hold for every xfcc caller (they carry no claims)');
  const istio: IstioSource = {};
  if (source.principals !== undefined) istio.principals = source.principals.map(istioPrincipal);
  if (source.notPrincipals !== undefined) istio.notPrincipals = source.notPrincipals.map(istioPrincipal);
  if (source.namespaces !== undefined) istio.namespaces = [...source.namespaces];
  if (source.notNamespaces !== undefined) istio.notNamespaces = [...source.notNamespaces];
  const when: IstioCondition[] = [];
  if (source.trustDomains !== undefined) {
    const results = source.trustDomains.map((p) => [p, trustDomainPattern(p)] as const);
    if (!results.some(([, r]) => r === 'any')) {
      const values = results.flatMap(([, r]) => (typeof r === 'object' ? [r.value] : []));
      const inexpressible = results.filter(([, r]) => r === 'inexpressible').map(([p]) => p);
      if (inexpressible.length === 0) {
        if (values.length === 0) return { kind: 'never', why: `no trust domain matches ${source.trustDomains.join(', ')}` };
        when.push({ key: 'source.principal', values });
      } else if (action === 'ALLOW') {
        notes.push(`trust domains ${inexpressible.join(', ')} (suffix patterns) cannot be matched at L4: any trust domain passes here, meshgate checks them`);
      } else if (values.length > 0) {
        when.push({ key: 'source.principal', values });
        notes.push(`only trust domains ${values.join(', ')} are denied at L4; ${inexpressible.join(', ')} (suffix patterns) only by meshgate`);
      } else {
        return { kind: 'skip', why: `trust domains ${inexpressible.join(', ')} are suffix patterns, which L4 cannot match` };
      }
    }
  }
  return { kind: 'match', source: istio, when, notes };
}

/** What the rule's targets mean on the Firestore port. */
function firestoreReach(rule: PolicyRuleSpec, action: 'ALLOW' | 'DENY'): 'all' | 'some' | 'none' {
  if (rule.to === undefined) return 'all';
  const firestore = rule.to.filter((t) => t.firestore !== undefined);
  if (firestore.length === 0) return 'none';
  // An ALLOW that grants any Firestore path lets the caller reach the port. A DENY of some
  // paths must not become a DENY of the whole port.
  return action === 'ALLOW' ? 'all' : 'some';
}

function ruleIdOf(doc: PolicyDocument, rule: PolicyRuleSpec, index: number): string {
  return `${doc.metadata.name}/${rule.id ?? String(index)}`;
}

function istioRule(ports: readonly string[], source: IstioSource | null, when: readonly IstioCondition[]): IstioRule {
  // Key order is the order a reader asks in: who, to where, on what condition.
  return {
    ...(source !== null && Object.keys(source).length > 0 ? { from: [{ source }] } : {}),
    to: [{ operation: { ports: [...ports] } }],
    ...(when.length > 0 ? { when: when.map((c) => ({ key: c.key, values: [...c.values] })) } : {}),
  };
}

function portList(ports: readonly MeshgatePort[]): string[] {
  return ports.map((p) => String(p.port));
}

/** The ALLOW and DENY rules for meshgate's workload, in policy load order. */
export function authorizationRules(documents: readonly PolicyDocument[], ports: readonly MeshgatePort[]): L4Policies {
  const allow: CommentedRule[] = [];
  const deny: CommentedRule[] = [];
  const notes: string[] = [];

  const own = ports.filter((p) => p.termination === 'meshgate');
  if (own.length > 0) {
    allow.push({
      rule: istioRule(portList(own), null, []),
      comment:
        `${own.map((p) => `${p.port} ${p.label}`).join(', ')}: meshgate terminates the caller's TLS and decides on every caller itself. ` +
        'The sidecar is bypassed (excludeInboundPorts) and would see no principal in a TLS it does not terminate, so L4 lets any source through.',
    });
  }
  const open = ports.filter((p) => p.termination === 'none');
  if (open.length > 0) {
    allow.push({
      rule: istioRule(portList(open), null, []),
      comment: `${open.map((p) => `${p.port} ${p.label}`).join(', ')}: no identity here; Prometheus scrapes it, often from outside the mesh (PERMISSIVE).`,
    });
  }
  const blind = ports.filter((p) => p.termination === 'sidecar' && !p.xfccTrusted);
  if (blind.length > 0) {
    allow.push({
      rule: istioRule(portList(blind), null, []),
      comment: `${blind.map((p) => `${p.port}`).join(', ')}: firestore.trustedHops is empty, so meshgate never believes the sidecar's XFCC and knows callers only by their bearer tokens; the L4 principal is not the identity meshgate decides on, so L4 lets any source through.`,
    });
  }
  const vouched = ports.filter((p) => p.termination === 'sidecar' && p.xfccTrusted);
  if (vouched.length === 0) {
    const rules = documents.flatMap((doc) => doc.spec.rules.map((rule, index) => `${ruleIdOf(doc, rule, index)} (${doc.spec.action})`));
    if (rules.length > 0) {
      notes.push(
        'no port here lets the sidecar see the identity meshgate decides on (only Firestore with tls: plaintext and ' +
          `firestore.trustedHops does), so every rule is meshgate's alone: ${rules.join(', ')}`,
      );
    }
    return { allow, deny, notes };
  }
  const at = portList(vouched);

  for (const doc of documents) {
    const documentAction = doc.spec.action;
    doc.spec.rules.forEach((rule, index) => {
      const id = ruleIdOf(doc, rule, index);
      // A dry run is recorded by meshgate and never enforced: enforcing it at L4 would refuse
      // what meshgate allows, and a dry-run ALLOW grants nothing to mirror. (Istio's own AUDIT
      // action only marks requests for a logging plugin.)
      if (documentAction === 'AUDIT' || rule.action === 'AUDIT') {
        notes.push(`${id}: a dry run (AUDIT), recorded by meshgate and never enforced, so not rendered`);
        return;
      }
      const action = documentAction;
      const reach = firestoreReach(rule, action);
      if (reach === 'none') return;
      if (reach === 'some') {
        notes.push(`${id}: denies only some Firestore paths or operations; meshgate alone enforces it (L4 cannot see paths)`);
        return;
      }
      const target = action === 'ALLOW' ? allow : deny;
      const sources = rule.from?.map((f) => f.source) ?? [null];
      sources.forEach((source, f) => {
        const name = rule.from === undefined ? `meshgate rule ${id} (every caller)` : `meshgate rule ${id}, from[${f}]`;
        if (source === null) {
          target.push({ rule: istioRule(at, null, []), comment: name });
          return;
        }
        const translated = translateSource(source, action);
        if (translated.kind === 'never') {
          notes.push(`${id} from[${f}]: not rendered, it cannot match a caller of port ${at.join(', ')}: ${translated.why}`);
          return;
        }
        if (translated.kind === 'skip') {
          notes.push(`${id} from[${f}]: DENY left to meshgate: ${translated.why}`);
          return;
        }
        const comment = [name, ...translated.notes].join('; ');
        target.push({ rule: istioRule(at, translated.source, translated.when), comment });
      });
    });
  }
  return { allow, deny, notes };
}
