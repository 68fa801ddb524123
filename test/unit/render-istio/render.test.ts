/**
 * `renderIstio`: every rendered object validates against Istio's schemas, and says what
 * meshgate's policy says where L4 can see it (and nothing narrower where it cannot).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../../src/config/load.ts';
import { loadPolicyDocuments } from '../../../src/policy/index.ts';
import { renderedToYaml, renderIstio, type RenderedIstio, type RenderIstioOptions } from '../../../src/render-istio/index.ts';
import { find, sidecarAllows, sidecarDenies, validateAll } from '../../helpers/istio.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'deploy/examples');
const OPTIONS: RenderIstioOptions = { namespace: 'db', name: 'meshgate' };

function examplePolicy() {
  const dir = join(EXAMPLES, 'policy');
  const names = readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort();
  return loadPolicyDocuments(names.map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') })));
}

function policy(text: string) {
  return loadPolicyDocuments([{ name: 'test.yaml', text }]);
}

function config(text: string) {
  return parseConfigText(text, join(ROOT, 'test-config.yaml'), { checkFiles: false });
}

/** Firestore behind meshgate's sidecar, callers known by XFCC: the one port where L4 sees meshgate's identity. */
const XFCC_CONFIG = `
trust: { bundles: [bundle.pem], trustDomains: [cluster.local, ci.example] }
firestore:
  host: 0.0.0.0
  port: 8080
  tls: plaintext
  trustedHops: [127.0.0.6]
  project: shop-prod
  upstream: { google: {} }
metrics: { listen: 0.0.0.0:9464 }
policy: { dir: policy }
`;

function render(documents: ReturnType<typeof policy>, configText: string | null, options: RenderIstioOptions = OPTIONS): RenderedIstio {
  const rendered = renderIstio({ documents: documents.documents, config: configText === null ? null : config(configText), options, policyVersion: documents.version });
  validateAll(rendered);
  return rendered;
}

type Spec = Record<string, any>;
const spec = (rendered: RenderedIstio, kind: string, name?: string): Spec => {
  const resource = find(rendered, kind, name);
  assert.ok(resource, `${kind} ${name ?? ''} rendered`);
  return resource.object.spec as Spec;
};

describe('renderIstio with the example configuration (meshgate terminates TLS on every data port)', () => {
  const documents = examplePolicy();
  const rendered = render(documents, readFileSync(join(EXAMPLES, 'meshgate.yaml'), 'utf8'), { ...OPTIONS, clientNamespaces: ['shop', 'analytics', 'shop'] });

  it('renders the resources in a fixed order, every one valid for Istio', () => {
    assert.deepEqual(
      rendered.resources.map((r) => `${r.object.kind}/${r.object.metadata.name}`),
      ['PeerAuthentication/meshgate', 'AuthorizationPolicy/meshgate-allow', 'DestinationRule/meshgate', 'Sidecar/meshgate', 'ServiceEntry/meshgate-googleapis', 'ServiceEntry/meshgate-jwks-2'],
    );
    for (const r of rendered.resources) assert.equal(r.object.metadata.namespace, 'db');
  });

  it('PeerAuthentication: STRICT, DISABLE where meshgate terminates TLS (MySQL, Firestore mtls, admin), PERMISSIVE on metrics', () => {
    const pa = spec(rendered, 'PeerAuthentication');
    assert.deepEqual(pa['selector'], { matchLabels: { app: 'meshgate' } });
    assert.deepEqual(pa['mtls'], { mode: 'STRICT' });
    assert.deepEqual(pa['portLevelMtls'], { '3307': { mode: 'DISABLE' }, '8443': { mode: 'DISABLE' }, '9440': { mode: 'DISABLE' }, '9464': { mode: 'PERMISSIVE' } });
    assert.deepEqual(rendered.podAnnotations, { 'traffic.sidecar.istio.io/excludeInboundPorts': '3307,8443,9440' });
  });

  it('AuthorizationPolicy: no principal rules on ports the sidecar cannot see into; no DENY policy; the rules named as meshgate-only', () => {
    assert.equal(find(rendered, 'AuthorizationPolicy', 'meshgate-deny'), undefined);
    const allow = spec(rendered, 'AuthorizationPolicy', 'meshgate-allow');
    assert.equal(allow['action'], 'ALLOW');
    assert.deepEqual(allow['rules'], [{ to: [{ operation: { ports: ['3307', '8443', '9440'] } }] }, { to: [{ operation: { ports: ['9464'] } }] }]);
    const comment = find(rendered, 'AuthorizationPolicy', 'meshgate-allow')!.comment.join('\n');
    assert.match(comment, /deny-non-production\/staging-and-dev \(DENY\)/);
    assert.match(comment, /ci-deny-pull-requests\/pull-request-events \(DENY\)/);
  });

  it('DestinationRule: ISTIO_MUTUAL by default, DISABLE where the client speaks TLS to meshgate itself, exported to the client namespaces', () => {
    const dr = spec(rendered, 'DestinationRule');
    assert.equal(dr['host'], 'meshgate.db.svc.cluster.local');
    assert.deepEqual(dr['trafficPolicy']['tls'], { mode: 'ISTIO_MUTUAL' });
    assert.deepEqual(dr['trafficPolicy']['portLevelSettings'].map((s: Spec) => [s['port']['number'], s['tls']['mode']]), [[3307, 'DISABLE'], [8443, 'DISABLE'], [9440, 'DISABLE']]);
    assert.deepEqual(dr['exportTo'], ['analytics', 'shop']);
  });

  it("Sidecar and ServiceEntries: meshgate's egress limited to what its configuration names", () => {
    const sidecar = spec(rendered, 'Sidecar');
    assert.deepEqual(sidecar['workloadSelector'], { labels: { app: 'meshgate' } });
    assert.deepEqual(sidecar['outboundTrafficPolicy'], { mode: 'REGISTRY_ONLY' });
    const hosts: string[] = sidecar['egress'][0]['hosts'];
    for (const host of ['istio-system/*', 'db/mariadb.db.svc.cluster.local', './firestore.googleapis.com', './token.actions.githubusercontent.com', 'observability/otel-collector.observability.svc.cluster.local']) {
      assert.ok(hosts.includes(host), `${host} in ${hosts.join(', ')}`);
    }
    const google = spec(rendered, 'ServiceEntry', 'meshgate-googleapis');
    assert.deepEqual(google['hosts'], ['firestore.googleapis.com', 'iamcredentials.googleapis.com', 'oauth2.googleapis.com']);
    assert.deepEqual(google['ports'], [{ number: 443, name: 'tls-googleapis', protocol: 'TLS' }]);
    assert.equal(google['location'], 'MESH_EXTERNAL');
    // MariaDB is a Service of the cluster here: no ServiceEntry for it.
    assert.equal(find(rendered, 'ServiceEntry', 'meshgate-mariadb'), undefined);
  });

  it('renders the same YAML every time, each document parseable, with the pod annotation at the top', () => {
    const yaml = renderedToYaml(rendered);
    assert.equal(renderedToYaml(render(documents, readFileSync(join(EXAMPLES, 'meshgate.yaml'), 'utf8'), { ...OPTIONS, clientNamespaces: ['analytics', 'shop'] })), yaml);
    const docs = parseAllDocuments(yaml);
    assert.deepEqual(docs.map((d) => d.errors.length), rendered.resources.map(() => 0));
    assert.deepEqual(docs.map((d) => d.toJS()), rendered.resources.map((r) => r.object));
    assert.match(yaml, /^# meshgate's pod template needs, beside these resources:\n#   traffic\.sidecar\.istio\.io\/excludeInboundPorts: "3307,8443,9440"/);
  });
});

describe('renderIstio with Firestore behind the sidecar (XFCC): L4 mirrors the policy', () => {
  it('a DENY of namespace staging renders a DENY AuthorizationPolicy with source.namespaces [staging] on the Firestore port', () => {
    const rendered = render(
      policy(`
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-staging }
spec:
  action: DENY
  rules:
    - id: staging
      from: [{ source: { namespaces: [staging] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: orders }
spec:
  action: ALLOW
  rules:
    - id: rw
      from: [{ source: { principals: ["spiffe://cluster.local/ns/shop/sa/orders"] } }]
      to: [{ firestore: { collections: ["orders/*"], operations: [read, write] } }]
`),
      XFCC_CONFIG,
    );
    const deny = spec(rendered, 'AuthorizationPolicy', 'meshgate-deny');
    assert.equal(deny['action'], 'DENY');
    assert.deepEqual(deny['rules'], [{ from: [{ source: { namespaces: ['staging'] } }], to: [{ operation: { ports: ['8080'] } }] }]);
    const allow = spec(rendered, 'AuthorizationPolicy', 'meshgate-allow');
    assert.deepEqual(allow['rules'], [
      { to: [{ operation: { ports: ['9464'] } }] },
      { from: [{ source: { principals: ['cluster.local/ns/shop/sa/orders'] } }], to: [{ operation: { ports: ['8080'] } }] },
    ]);
    const pa = spec(rendered, 'PeerAuthentication');
    assert.deepEqual(pa['portLevelMtls'], { '9464': { mode: 'PERMISSIVE' } }, 'the Firestore port stays STRICT');
    assert.deepEqual(rendered.podAnnotations, {});
    const dr = spec(rendered, 'DestinationRule');
    assert.deepEqual(dr['trafficPolicy']['portLevelSettings'], [{ port: { number: 8080 }, tls: { mode: 'ISTIO_MUTUAL' } }]);
    assert.equal(sidecarDenies(rendered, 'cluster.local/ns/staging/sa/orders', 8080), true);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/shop/sa/orders', 8080), true);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/shop/sa/other', 8080), false);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/shop/sa/other', 9464), true);
  });

  it('the example policy: ALLOW rules keep their principals, namespaces and trust domains; claims-only and MariaDB-only rules stay with meshgate', () => {
    const rendered = render(examplePolicy(), XFCC_CONFIG);
    const allow = spec(rendered, 'AuthorizationPolicy', 'meshgate-allow');
    assert.deepEqual(allow['rules'].slice(1), [
      { from: [{ source: { principals: ['cluster.local/ns/shop/sa/orders'] } }], to: [{ operation: { ports: ['8080'] } }] },
      {
        from: [{ source: { notPrincipals: ['cluster.local/ns/analytics/sa/sandbox'], namespaces: ['analytics'] } }],
        to: [{ operation: { ports: ['8080'] } }],
        when: [{ key: 'source.principal', values: ['cluster.local/*'] }],
      },
    ]);
    const deny = spec(rendered, 'AuthorizationPolicy', 'meshgate-deny');
    assert.deepEqual(deny['rules'], [{ from: [{ source: { namespaces: ['staging', 'dev-*'] } }], to: [{ operation: { ports: ['8080'] } }] }]);
    const notes = find(rendered, 'AuthorizationPolicy', 'meshgate-allow')!.comment.join('\n');
    // The pull-request DENY names claims: an xfcc caller never carries them, so it denies nobody here.
    assert.match(notes, /ci-deny-pull-requests\/pull-request-events from\[0\]: not rendered/);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/analytics/sa/reports', 8080), true);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/analytics/sa/sandbox', 8080), false);
    assert.equal(sidecarAllows(rendered, 'ci.example/ns/analytics/sa/reports', 8080), false);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/dev-3/sa/orders', 8080), false);
  });

  it('claims-only and token-only ALLOW rules grant nothing at L4; claims in a DENY never widen it into denying xfcc callers', () => {
    const rendered = render(
      policy(`
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: people }
spec:
  action: ALLOW
  rules:
    - id: by-group
      from: [{ source: { claims: { groups: [eng] } } }]
      to: [{ firestore: { collections: ["**"], operations: [read] } }]
    - id: jwt-only
      from: [{ source: { principals: ["cluster.local/ns/ci/sa/*"], authMethods: [jwt] } }]
      to: [{ firestore: { collections: ["**"], operations: [read] } }]
    - id: xfcc-too
      from: [{ source: { principals: ["*/sa/reader"], authMethods: [jwt, xfcc], notClaims: { env: [prod] } } }]
      to: [{ firestore: { collections: ["**"], operations: [read] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-prod-claims }
spec:
  action: DENY
  rules:
    - from: [{ source: { namespaces: [shop], claims: { env: [prod] } } }]
`),
      XFCC_CONFIG,
    );
    assert.equal(find(rendered, 'AuthorizationPolicy', 'meshgate-deny'), undefined);
    const allow = spec(rendered, 'AuthorizationPolicy', 'meshgate-allow');
    assert.deepEqual(allow['rules'].slice(1), [{ from: [{ source: { principals: ['*/sa/reader'] } }], to: [{ operation: { ports: ['8080'] } }] }]);
    const comments = find(rendered, 'AuthorizationPolicy', 'meshgate-allow')!.ruleComments!;
    assert.match(comments[1]!, /people\/xfcc-too, from\[0\]; notClaims hold for every xfcc caller/);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/shop/sa/reader', 8080), true);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/ci/sa/job', 8080), false);
  });

  it('trust domain globs: a prefix becomes a principal prefix; a suffix widens an ALLOW and is left out of a DENY', () => {
    const rendered = render(
      policy(`
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: tds }
spec:
  action: ALLOW
  rules:
    - id: prefix
      from: [{ source: { trustDomains: ["prod-*"], namespaces: [shop] } }]
      to: [{ firestore: { collections: ["orders/*"], operations: [read] } }]
    - id: suffix
      from: [{ source: { trustDomains: ["*.example"], principals: ["*/sa/orders"] } }]
      to: [{ firestore: { collections: ["orders/*"], operations: [read] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-tds }
spec:
  action: DENY
  rules:
    - id: mixed
      from: [{ source: { trustDomains: ["legacy.local", "*.old"] } }]
    - id: suffix-only
      from: [{ source: { trustDomains: ["*.old"] } }]
    - id: some-paths
      from: [{ source: { namespaces: [staging] } }]
      to: [{ firestore: { collections: ["secrets/*"] } }]
`),
      XFCC_CONFIG,
    );
    const allow = spec(rendered, 'AuthorizationPolicy', 'meshgate-allow');
    assert.deepEqual(allow['rules'].slice(1), [
      { from: [{ source: { namespaces: ['shop'] } }], to: [{ operation: { ports: ['8080'] } }], when: [{ key: 'source.principal', values: ['prod-*'] }] },
      { from: [{ source: { principals: ['*/sa/orders'] } }], to: [{ operation: { ports: ['8080'] } }] },
    ]);
    const deny = spec(rendered, 'AuthorizationPolicy', 'meshgate-deny');
    assert.deepEqual(deny['rules'], [{ to: [{ operation: { ports: ['8080'] } }], when: [{ key: 'source.principal', values: ['legacy.local/*'] }] }]);
    const notes = find(rendered, 'AuthorizationPolicy', 'meshgate-allow')!.comment.join('\n');
    assert.match(notes, /deny-tds\/suffix-only from\[0\]: DENY left to meshgate/);
    assert.match(notes, /deny-tds\/some-paths: denies only some Firestore paths/);
    assert.equal(sidecarAllows(rendered, 'prod-east/ns/shop/sa/x', 8080), true);
    assert.equal(sidecarAllows(rendered, 'dev/ns/shop/sa/x', 8080), false);
    assert.equal(sidecarDenies(rendered, 'legacy.local/ns/shop/sa/orders', 8080), true);
    assert.equal(sidecarDenies(rendered, 'cluster.local/ns/staging/sa/orders', 8080), false);
  });

  it('a policy that grants nothing on the XFCC port renders an ALLOW policy without rules: the sidecar, like meshgate, refuses everyone there', () => {
    const rendered = render(
      policy(`
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: mariadb-only }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { namespaces: [shop] } }]
      to: [{ mariadb: { databases: [shop], role: r } }]
`),
      XFCC_CONFIG.replace('metrics: { listen: 0.0.0.0:9464 }', ''),
    );
    assert.deepEqual(spec(rendered, 'AuthorizationPolicy', 'meshgate-allow')['rules'], []);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/shop/sa/orders', 8080), false);
    assert.match(renderedToYaml(rendered), /rules: \[\]/);
  });

  it('each L4 rule is headed in the YAML by the meshgate rule it comes from', () => {
    const yaml = renderedToYaml(render(examplePolicy(), XFCC_CONFIG));
    assert.match(yaml, /    # meshgate rule orders-read-write\/shop-rw, from\[0\]\n    - from:\n        - source:\n            principals:\n              - cluster.local\/ns\/shop\/sa\/orders\n/);
    assert.match(yaml, /    # meshgate rule deny-non-production\/staging-and-dev, from\[0\]\n    - from:/);
  });

  it('dry runs (an AUDIT document, a rule with action AUDIT) are never enforced at L4', () => {
    const rendered = render(
      policy(`
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: watch-staging }
spec:
  action: AUDIT
  rules:
    - id: staging
      from: [{ source: { namespaces: [staging] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: deny-dev }
spec:
  action: DENY
  rules:
    - id: dev
      action: AUDIT
      from: [{ source: { namespaces: [dev] } }]
    - id: test
      from: [{ source: { namespaces: [test] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: all }
spec:
  action: ALLOW
  rules:
    - to: [{ firestore: { collections: ["**"], operations: [read] } }]
`),
      XFCC_CONFIG,
    );
    assert.deepEqual(spec(rendered, 'AuthorizationPolicy', 'meshgate-deny')['rules'], [{ from: [{ source: { namespaces: ['test'] } }], to: [{ operation: { ports: ['8080'] } }] }]);
    const notes = find(rendered, 'AuthorizationPolicy', 'meshgate-allow')!.comment.join('\n');
    assert.match(notes, /watch-staging\/staging: a dry run \(AUDIT\)/);
    assert.match(notes, /deny-dev\/dev: a dry run \(AUDIT\)/);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/staging/sa/x', 8080), true);
    assert.equal(sidecarAllows(rendered, 'cluster.local/ns/dev/sa/x', 8080), true);
  });

  it('without trustedHops meshgate ignores XFCC, so L4 restricts no principal on that port', () => {
    const rendered = render(examplePolicy(), XFCC_CONFIG.replace('trustedHops: [127.0.0.6]', 'trustedHops: []'));
    assert.equal(find(rendered, 'AuthorizationPolicy', 'meshgate-deny'), undefined);
    assert.deepEqual(spec(rendered, 'AuthorizationPolicy', 'meshgate-allow')['rules'], [{ to: [{ operation: { ports: ['9464'] } }] }, { to: [{ operation: { ports: ['8080'] } }] }]);
  });
});

describe('renderIstio: other shapes', () => {
  it('Firestore only, mtls, with the example Firestore configuration: one excluded port, no MariaDB anywhere', () => {
    const rendered = render(examplePolicy(), readFileSync(join(EXAMPLES, 'meshgate-firestore.yaml'), 'utf8'), { ...OPTIONS, selector: { 'app.kubernetes.io/name': 'meshgate', tier: 'db' } });
    assert.deepEqual(spec(rendered, 'PeerAuthentication')['portLevelMtls'], { '8443': { mode: 'DISABLE' } });
    assert.deepEqual(spec(rendered, 'PeerAuthentication')['selector'], { matchLabels: { 'app.kubernetes.io/name': 'meshgate', tier: 'db' } });
    assert.deepEqual(rendered.podAnnotations, { 'traffic.sidecar.istio.io/excludeInboundPorts': '8443' });
    assert.ok(!JSON.stringify(rendered.resources).includes('3307'));
    assert.ok(!spec(rendered, 'Sidecar')['egress'][0]['hosts'].some((h: string) => h.includes('mariadb')));
  });

  it('without a configuration: the engines the policy grants at their default ports, no Sidecar or ServiceEntry', () => {
    const rendered = render(
      policy(`
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: fs }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { namespaces: [shop] } }]
      to: [{ firestore: { collections: ["orders/*"], operations: [read] } }]
`),
      null,
    );
    assert.deepEqual(rendered.resources.map((r) => r.object.kind), ['PeerAuthentication', 'AuthorizationPolicy', 'DestinationRule']);
    assert.deepEqual(rendered.podAnnotations, { 'traffic.sidecar.istio.io/excludeInboundPorts': '8443' });
  });

  it('MySQL first-byte and an upstream outside the cluster: ISTIO_MUTUAL for MySQL, a ServiceEntry for MariaDB, a warning for loopback and secrets', () => {
    const rendered = render(
      examplePolicy(),
      `
listener: { host: 127.0.0.1, port: 3307, tls: { mode: first-byte, cert: c.pem, key: k.pem } }
upstream: { host: 10.20.0.5, port: 3306, roles: { shop_reader: { user: r, password: { env: P } } } }
trust: { bundles: [bundle.pem], trustDomains: [cluster.local] }
state: { postgres: { url: { env: PG } } }
policy: { dir: policy }
`,
    );
    assert.deepEqual(spec(rendered, 'DestinationRule')['trafficPolicy']['portLevelSettings'], [{ port: { number: 3307 }, tls: { mode: 'ISTIO_MUTUAL' } }]);
    const mariadb = spec(rendered, 'ServiceEntry', 'meshgate-mariadb');
    assert.deepEqual(mariadb['addresses'], ['10.20.0.5']);
    assert.deepEqual(mariadb['ports'], [{ number: 3306, name: 'tcp-mariadb', protocol: 'TCP' }]);
    assert.equal(mariadb['resolution'], 'STATIC');
    assert.deepEqual(spec(rendered, 'Sidecar')['outboundTrafficPolicy'], { mode: 'ALLOW_ANY' });
    assert.equal(rendered.warnings.length, 2);
    assert.match(rendered.warnings[0]!, /MySQL \(first-byte\) listens on 127\.0\.0\.1:3307/);
    assert.match(rendered.warnings[1]!, /state\.postgres\.url/);
    // A parse of the YAML gives back the objects.
    assert.deepEqual(parse(renderedToYaml({ ...rendered, resources: [rendered.resources[0]!] })), rendered.resources[0]!.object);
  });
});
