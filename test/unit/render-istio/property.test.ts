/**
 * For random policies: every rendered object validates against Istio's schemas, and on the
 * XFCC port (where the sidecar's principal is meshgate's caller) the sidecar never refuses a
 * caller meshgate would allow, while a caller the rendered DENY refuses is one meshgate
 * refuses for every request. meshgate's side is the compiled policy itself.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseConfigText } from '../../../src/config/load.ts';
import { FIRESTORE_DEFAULT_DATABASE, firestorePathKind, loadPolicyDocuments, subjectFromPrincipal, type FirestoreOperation, type PolicyRequest } from '../../../src/policy/index.ts';
import { renderIstio } from '../../../src/render-istio/index.ts';
import { sidecarAllows, sidecarDenies, validateAll } from '../../helpers/istio.ts';

const TRUST_DOMAINS = ['cluster.local', 'ci.example', 'prod-east', 'legacy.old'];
const NAMESPACES = ['shop', 'staging', 'dev-1', 'analytics'];
const ACCOUNTS = ['orders', 'sandbox', 'reader'];
const PORT = 8080;

const CONFIG = parseConfigText(
  `
trust: { bundles: [bundle.pem], trustDomains: [${TRUST_DOMAINS.join(', ')}] }
firestore: { host: 0.0.0.0, port: ${PORT}, tls: plaintext, trustedHops: [127.0.0.6], project: p, upstream: { google: {} } }
listener: { host: 0.0.0.0, port: 3307, tls: { cert: c.pem, key: k.pem } }
upstream: { host: mariadb.db.svc.cluster.local, roles: { r: { user: r, password: { env: P } } } }
metrics: { listen: 0.0.0.0:9464 }
policy: { dir: policy }
`,
  join(process.cwd(), 'property.yaml'),
  { checkFiles: false },
);

const PRINCIPALS = [
  ...TRUST_DOMAINS.flatMap((td) => NAMESPACES.flatMap((ns) => ACCOUNTS.map((sa) => `${td}/ns/${ns}/sa/${sa}`))),
  // SPIFFE IDs outside Istio's ns/sa layout: no namespace.
  'ci.example/github/acme/shop/env/production',
  'prod-east/job/nightly',
];

const PATHS = ['orders/o1', 'orders', 'analytics/a/b/c', 'secrets/s1', 'orders/o1/**', '**'];
const OPERATIONS: FirestoreOperation[] = ['read', 'write', 'admin'];
const REQUESTS: PolicyRequest[] = [
  ...PATHS.flatMap((path) => OPERATIONS.map((operation) => ({ engine: 'firestore', database: FIRESTORE_DEFAULT_DATABASE, path, pathKind: firestorePathKind(path), operation }) as const)),
  { engine: 'mysql', database: 'shop' },
];

const some = <T>(values: readonly T[]) => fc.uniqueArray(fc.constantFrom(...values), { minLength: 1, maxLength: 3 });
const principalPattern = fc.oneof(
  fc.constantFrom(...PRINCIPALS),
  fc.constantFrom(...PRINCIPALS).map((p) => `spiffe://${p}`),
  fc.constantFrom(...TRUST_DOMAINS).chain((td) => fc.constantFrom(...NAMESPACES).map((ns) => `${td}/ns/${ns}/*`)),
  fc.constantFrom(...ACCOUNTS).map((sa) => `*/sa/${sa}`),
  fc.constant('*'),
);
const namespacePattern = fc.oneof(fc.constantFrom(...NAMESPACES), fc.constantFrom('dev-*', '*ing', '*'));
const trustDomainPattern = fc.oneof(fc.constantFrom(...TRUST_DOMAINS), fc.constantFrom('prod-*', '*.old', '*.example', '*'));
const claims = fc.constantFrom({ env: ['prod'] }, { groups: ['eng', 'ops'] });

const source = fc
  .record(
    {
      principals: fc.uniqueArray(principalPattern, { minLength: 1, maxLength: 3 }),
      notPrincipals: fc.uniqueArray(principalPattern, { minLength: 1, maxLength: 2 }),
      namespaces: fc.uniqueArray(namespacePattern, { minLength: 1, maxLength: 2 }),
      notNamespaces: fc.uniqueArray(namespacePattern, { minLength: 1, maxLength: 2 }),
      trustDomains: fc.uniqueArray(trustDomainPattern, { minLength: 1, maxLength: 2 }),
      authMethods: some(['mtls', 'jwt', 'xfcc'] as const),
      notAuthMethods: some(['mtls', 'jwt', 'xfcc'] as const),
      claims,
      notClaims: claims,
    },
    { requiredKeys: [] },
  )
  .filter((s) => Object.keys(s).length > 0)
  // The schema refuses claims on a source that excludes jwt (it could never match).
  .filter((s) => s.claims === undefined || ((s.authMethods === undefined || s.authMethods.includes('jwt')) && s.notAuthMethods?.includes('jwt') !== true));

const collections = some(['orders/*', 'analytics/**', 'secrets/*', '**']);
const allowTarget = fc.oneof(
  fc.record({ firestore: fc.record({ collections, operations: some(OPERATIONS) }) }),
  fc.constant({ mariadb: { databases: ['shop'], role: 'r' } }),
);
const denyTarget = fc.oneof(
  fc.record({ firestore: fc.record({ collections, operations: some(OPERATIONS) }, { requiredKeys: ['collections'] }) }),
  fc.constant({ mariadb: { databases: ['shop'] } }),
);
const from = fc.option(fc.array(source.map((s) => ({ source: s })), { minLength: 1, maxLength: 2 }), { nil: undefined });
// A rule-level `action: AUDIT` makes that rule a dry run: matched, recorded, never enforced.
const dryRun = fc.option(fc.constant('AUDIT' as const), { nil: undefined, freq: 4 });
const rule = (action: 'ALLOW' | 'DENY' | 'AUDIT') =>
  action === 'ALLOW'
    ? fc.record({ from, to: fc.array(allowTarget, { minLength: 1, maxLength: 2 }), action: dryRun }, { requiredKeys: ['to'] })
    : fc.record({ from, to: fc.option(fc.array(denyTarget, { minLength: 1, maxLength: 2 }), { nil: undefined }), action: dryRun }, { requiredKeys: [] });
const document = fc
  .constantFrom('ALLOW' as const, 'DENY' as const, 'AUDIT' as const)
  .chain((action) => fc.record({ action: fc.constant(action), rules: fc.array(rule(action), { minLength: 1, maxLength: 3 }) }));
const policyText = fc.array(document, { minLength: 1, maxLength: 4 }).map((docs) =>
  docs
    .map((spec, i) => stringify({ apiVersion: 'meshgate.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: `doc-${i}` }, spec: { action: spec.action, rules: spec.rules.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))) } }))
    .join('---\n'),
);

describe('renderIstio on random policies', () => {
  it('every rendered object validates; the sidecar allows whoever meshgate allows, and denies only whom meshgate denies everything', () => {
    fc.assert(
      fc.property(policyText, (text) => {
        const policy = loadPolicyDocuments([{ name: 'random.yaml', text }]);
        const rendered = renderIstio({ documents: policy.documents, config: CONFIG, options: { namespace: 'db', name: 'meshgate' } });
        validateAll(rendered);
        for (const principal of PRINCIPALS) {
          const subject = { ...subjectFromPrincipal(principal), authMethod: 'xfcc' };
          const denied = sidecarDenies(rendered, principal, PORT);
          const allowed = sidecarAllows(rendered, principal, PORT);
          for (const request of REQUESTS) {
            const decision = policy.evaluate(subject, request);
            if (request.engine === 'firestore' && decision.allow) assert.ok(allowed, `the sidecar refuses ${principal}, whom ${decision.ruleId} allows ${request.operation} ${request.path}\n${text}`);
            if (denied && request.engine === 'firestore') assert.ok(!decision.allow, `the sidecar's DENY refuses ${principal}, whom ${decision.ruleId} allows on ${JSON.stringify(request)}\n${text}`);
          }
          // Ports where meshgate terminates TLS, and metrics, are never closed by L4.
          for (const port of [3307, 9464]) assert.ok(sidecarAllows(rendered, principal, port));
        }
      }),
      { numRuns: 300, seed: 20261207 },
    );
  });
});
