/**
 * The value sets the chart is rendered with in helm-chart.test.ts, and what each should give:
 * the ports meshgate terminates itself (excluded from the sidecar), and the Service ports.
 */

export interface Scenario {
  readonly name: string;
  /** A values file, as a user would write it. */
  readonly values: string;
  /** The sidecar's excludeInboundPorts, sorted; null where Istio is off (no annotation at all). */
  readonly excluded: readonly number[] | null;
  /** Service port names of the main Service. */
  readonly servicePorts: readonly string[];
  readonly replicas: number;
  /** `workers` in the values: `serve --workers N` in the container's arguments. */
  readonly workers?: number;
}

const THROTTLE = `
throttle:
  defaultClass: default
  classes:
    default: { rate: { perSecond: 100 }, concurrency: 50 }
    critical: { priority: 100, concurrency: 20 }
  upstream: { connections: 200, reserved: { critical: 20 } }
`;

export const SCENARIOS: readonly Scenario[] = [
  { name: 'defaults', values: '{}\n', excluded: [3307, 9440], servicePorts: ['tcp-mysql', 'tcp-admin'], replicas: 1 },
  {
    name: 'three replicas of two workers with PostgreSQL, Redis and a ServiceMonitor',
    workers: 2,
    values: `
replicaCount: 3
workers: 2
image: { tag: 0.1.0-rc.1 }
state:
  postgres: { enabled: true, existingSecret: meshgate-state-pg }
redis: { enabled: true, existingSecret: meshgate-redis, urlKey: redis-url }
${THROTTLE}
metrics:
  serviceMonitor: { enabled: true, labels: { release: prometheus } }
upstream:
  host: mariadb.db.svc.cluster.local
  tls: { enabled: true, existingSecret: meshgate-upstream-tls }
  credentials:
    admin: { existingSecret: mariadb-admin, passwordKey: admin-password }
tls: { existingSecret: meshgate-server-cert }
admin:
  principals: [spiffe://cluster.local/ns/platform/sa/meshgate-operator]
audit:
  durability: strict
  signingKey: { existingSecret: meshgate-audit-key }
  export:
    postgres: { enabled: true, existingSecret: meshgate-audit-pg }
  rotate: { maxBytes: 104857600, maxAge: 1d }
tokens:
  issuers:
    - issuer: https://kubernetes.default.svc.cluster.local
      audiences: [meshgate]
      jwks:
        url: https://kubernetes.default.svc/openid/v1/jwks
        caFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
      mapping: { kind: kubernetes }
      trustDomain: cluster.local
tracing:
  otlp: { endpoint: http://otel-collector.observability.svc:4318 }
resources:
  requests: { cpu: 500m, memory: 512Mi }
  limits: { cpu: "2", memory: 1Gi }
podDisruptionBudget: { minAvailable: 2 }
`,
    excluded: [3307, 9440],
    servicePorts: ['tcp-mysql', 'tcp-admin'],
    replicas: 3,
  },
  {
    name: 'Firestore only, behind the sidecar (xfcc)',
    values: `
mysql: { enabled: false }
admin: { enabled: false }
firestore:
  enabled: true
  mode: xfcc
  project: shop-prod
  upstream: { emulator: firestore-emulator.dev.svc:8080 }
  googleCredentials: { existingSecret: meshgate-google }
`,
    excluded: [],
    servicePorts: ['grpc-firestore'],
    replicas: 1,
  },
  {
    name: 'Firestore in mtls mode beside MySQL first-byte',
    values: `
mysql: { tlsMode: first-byte }
firestore: { enabled: true, mode: mtls, project: shop-prod, port: 8443 }
istio:
  destinationRule: { exportTo: [shop, analytics] }
extraConfig:
  listener: { timeouts: { handshake: 5s } }
`,
    excluded: [3307, 8443, 9440],
    servicePorts: ['tcp-mysql', 'tcp-firestore', 'tcp-admin'],
    replicas: 1,
  },
  {
    name: 'policy from git, two replicas',
    values: `
replicaCount: 2
state:
  postgres: { enabled: true, existingSecret: meshgate-state-pg, schema: meshgate_prod }
policy:
  source: git
  openSessions: reevaluate
  git:
    url: ssh://git@git.example.com/platform/db-policy.git
    ref: release/prod
    path: policy
    interval: 2m
    trustedKeys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq5G9sJ1B0xqvQzq3vD2bOe6yq4WmZrN0JkTz5y0Gm release@example.com
    ssh: { existingSecret: meshgate-policy-deploy-key }
`,
    excluded: [3307, 9440],
    servicePorts: ['tcp-mysql', 'tcp-admin'],
    replicas: 2,
  },
  {
    name: 'Istio disabled, static roles, own CA bundle',
    values: `
istio: { enabled: false }
trust:
  istioRootCa: false
  bundles:
    - { configMap: meshgate-ca, key: ca.crt }
    - { secret: partner-ca, key: bundle.pem }
  trustDomains: [cluster.local, partner.example]
upstream:
  credentials: { enabled: false }
  roles:
    shop_writer: { user: mg_shop_writer, existingSecret: shop-writer }
    shop_reader: { user: mg_shop_reader, existingSecret: shop-reader, passwordKey: pw }
admin: { enabled: false }
podDisruptionBudget: { enabled: false }
policy: { existingConfigMap: shop-policy }
`,
    excluded: null,
    servicePorts: ['tcp-mysql'],
    replicas: 1,
  },
  {
    name: 'the SVID signer beside Firestore in mtls mode, with the audit key',
    values: `
tls: { existingSecret: meshgate-server-cert }
firestore: { enabled: true, mode: mtls, project: shop-prod }
signer:
  enabled: true
  caSecret: meshgate-signer-ca
  svidTtlSeconds: 3600
  renewWithSvid: false
  issuancesPerMinute: 30
audit:
  signingKey: { existingSecret: meshgate-audit-key }
`,
    excluded: [3307, 8443, 8444, 9440],
    servicePorts: ['tcp-mysql', 'tcp-firestore', 'tcp-admin', 'tcp-signer'],
    replicas: 1,
  },
  {
    name: 'the signer as the only TLS port, beside Firestore behind the sidecar',
    values: `
mysql: { enabled: false }
admin: { enabled: false }
firestore: { enabled: true, mode: xfcc, project: shop-prod }
signer: { enabled: true, caSecret: meshgate-signer-ca, port: 9443, joinTokens: true }
`,
    excluded: [9443],
    servicePorts: ['grpc-firestore', 'tcp-signer'],
    replicas: 1,
  },
];

/** Values helm must refuse, and a part of what it must say. */
export const REFUSED: readonly { readonly name: string; readonly values: string; readonly says: RegExp }[] = [
  { name: 'a typo in a key', values: 'mysql: { prot: 3307 }\n', says: /mysql: Additional property prot is not allowed/ },
  { name: 'a wrong type', values: 'replicaCount: three\n', says: /replicaCount: Invalid type\. Expected: integer, given: string/ },
  { name: 'no worker', values: 'workers: 0\n', says: /workers: Must be greater than or equal to 1/ },
  { name: 'an inline secret', values: 'upstream: { credentials: { admin: { password: hunter2 } } }\n', says: /upstream\.credentials\.admin: Additional property password is not allowed/ },
  { name: 'an unknown TLS mode', values: 'mysql: { tlsMode: plain }\n', says: /mysql\.tlsMode: mysql\.tlsMode must be one of the following/ },
  { name: 'a Redis URL with a password', values: 'redis: { enabled: true, url: "redis://:pw@redis:6379" }\n', says: /redis\.url/ },
  { name: 'shared limits under throttle', values: 'throttle: { shared: { redis: { url: redis://r:6379 } } }\n', says: /throttle/ },
  { name: 'replicas without PostgreSQL', values: 'replicaCount: 2\n', says: /replicaCount > 1 needs state\.postgres\.enabled/ },
  { name: 'xfcc without Istio', values: 'istio: { enabled: false }\nfirestore: { enabled: true, mode: xfcc, project: p }\n', says: /firestore\.mode xfcc trusts the pod's Istio sidecar/ },
  { name: 'Firestore without a project', values: 'firestore: { enabled: true }\n', says: /firestore\.project/ },
  { name: 'the signer without its CA Secret', values: 'signer: { enabled: true }\n', says: /signer\.caSecret: name the Secret holding the CA/ },
  {
    name: "the signer on Firestore's port",
    values: 'firestore: { enabled: true, project: p }\nsigner: { enabled: true, caSecret: ca, port: 8443 }\n',
    says: /signer\.port 8443 is firestore\.port too/,
  },
  {
    name: "the signer without meshgate's server certificate (through extraConfig, with no TLS port)",
    values: 'mysql: { enabled: false }\nadmin: { enabled: false }\nfirestore: { enabled: true, mode: xfcc, project: p }\nextraConfig: { signer: { caDir: /ca } }\n',
    says: /the signer serves HTTPS with meshgate's server certificate, and this configuration has none/,
  },
  {
    name: 'join tokens with replicas',
    values: 'replicaCount: 2\nstate: { postgres: { enabled: true, existingSecret: pg } }\nsigner: { enabled: true, caSecret: ca, joinTokens: true }\n',
    says: /signer\.joinTokens with replicaCount > 1/,
  },
  { name: 'an SVID lifetime under a minute', values: 'signer: { svidTtlSeconds: 30 }\n', says: /signer\.svidTtlSeconds/ },
];
