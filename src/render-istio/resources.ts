/**
 * The Istio resources around meshgate's workload, built as plain objects in a fixed order
 * (PeerAuthentication, AuthorizationPolicies DENY then ALLOW, DestinationRule, Sidecar,
 * ServiceEntries) so the same policy and configuration always render the same text.
 */
import type { PolicyDocument } from '../policy/index.ts';
import { authorizationRules, type CommentedRule } from './authorization.ts';
import { egressPlan, type EgressEndpoint } from './egress.ts';
import { isLoopback, meshgatePorts, type MeshgatePort, type RenderConfig } from './ports.ts';

export interface RenderIstioOptions {
  /** The namespace meshgate runs in; every resource is created there. */
  readonly namespace: string;
  /** Names the resources and meshgate's Service (`<name>.<namespace>.svc.cluster.local`). */
  readonly name: string;
  /** Labels of meshgate's pods; default `app: <name>`. */
  readonly selector?: Readonly<Record<string, string>>;
  /** Namespaces of meshgate's clients: the DestinationRule is exported to them only. Default: every namespace. */
  readonly clientNamespaces?: readonly string[];
}

export interface RenderIstioInput {
  readonly documents: readonly PolicyDocument[];
  /** meshgate's configuration; null renders the engines the policy names at their default ports. */
  readonly config: RenderConfig | null;
  readonly options: RenderIstioOptions;
  /** Recorded in an annotation, so a cluster shows which policy its resources came from. */
  readonly policyVersion?: string;
}

export interface RenderedResource {
  /** apiVersion, kind, metadata, spec: what `kubectl apply` takes. */
  readonly object: {
    readonly apiVersion: string;
    readonly kind: string;
    readonly metadata: { name: string; namespace: string; annotations?: Record<string, string> };
    readonly spec: Record<string, unknown>;
  };
  /** Why this resource is shaped as it is; rendered as a comment above it. */
  readonly comment: readonly string[];
  /** For AuthorizationPolicies: a comment per entry of spec.rules, in order. */
  readonly ruleComments?: readonly string[];
}

export interface RenderedIstio {
  readonly resources: readonly RenderedResource[];
  /** The pod annotations meshgate's Deployment needs beside these resources. */
  readonly podAnnotations: Readonly<Record<string, string>>;
  /** Things the operator should fix or know, for standard error. */
  readonly warnings: readonly string[];
}

const ANNOTATION = 'meshgate.dev';
const SECURITY = 'security.istio.io/v1';
const NETWORKING = 'networking.istio.io/v1';

/** Which engines the policy grants anything on, for rendering without a configuration. */
function enginesOf(documents: readonly PolicyDocument[]): { mysql: boolean; firestore: boolean } {
  const targets = documents.flatMap((d) => d.spec.rules.flatMap((r) => r.to ?? []));
  return { mysql: targets.some((t) => t.mariadb !== undefined), firestore: targets.some((t) => t.firestore !== undefined) };
}

function metadata(input: RenderIstioInput, suffix: string, annotations: Record<string, string> = {}): RenderedResource['object']['metadata'] {
  const all = { ...annotations, ...(input.policyVersion === undefined ? {} : { [`${ANNOTATION}/policy-version`]: input.policyVersion }) };
  const meta: RenderedResource['object']['metadata'] = { name: suffix === '' ? input.options.name : `${input.options.name}-${suffix}`, namespace: input.options.namespace };
  if (Object.keys(all).length > 0) meta.annotations = Object.fromEntries(Object.entries(all).sort(([a], [b]) => (a < b ? -1 : 1)));
  return meta;
}

function peerAuthentication(input: RenderIstioInput, selector: Record<string, string>, ports: readonly MeshgatePort[], excluded: string): RenderedResource {
  const portLevelMtls: Record<string, { mode: string }> = {};
  for (const p of ports) {
    if (p.termination === 'meshgate') portLevelMtls[String(p.port)] = { mode: 'DISABLE' };
    if (p.termination === 'none') portLevelMtls[String(p.port)] = { mode: 'PERMISSIVE' };
  }
  const spec: Record<string, unknown> = { selector: { matchLabels: selector }, mtls: { mode: 'STRICT' } };
  if (Object.keys(portLevelMtls).length > 0) spec['portLevelMtls'] = portLevelMtls;
  return {
    object: { apiVersion: SECURITY, kind: 'PeerAuthentication', metadata: metadata(input, '', excluded === '' ? {} : { [`${ANNOTATION}/exclude-inbound-ports`]: excluded }), spec },
    comment: [
      "Every port the sidecar terminates requires Istio mTLS (STRICT): there the sidecar's principal is the caller meshgate decides on.",
      ...(excluded === ''
        ? []
        : [`DISABLE on ${excluded}: meshgate terminates the caller's TLS itself (the client's own certificate or token is the identity); those ports are also excluded from the sidecar (traffic.sidecar.istio.io/excludeInboundPorts). The DestinationRule below keeps client sidecars from wrapping them in Istio mTLS.`]),
      ...ports.filter((p) => p.termination === 'none').map((p) => `PERMISSIVE on ${p.port}: ${p.label}, scraped by Prometheus in or outside the mesh.`),
    ],
  };
}

function authorizationPolicy(input: RenderIstioInput, selector: Record<string, string>, action: 'ALLOW' | 'DENY', rules: readonly CommentedRule[], comment: string[]): RenderedResource {
  return {
    object: {
      apiVersion: SECURITY,
      kind: 'AuthorizationPolicy',
      metadata: metadata(input, action.toLowerCase()),
      spec: { selector: { matchLabels: selector }, action, rules: rules.map((r) => r.rule) },
    },
    comment,
    ruleComments: rules.map((r) => r.comment),
  };
}

function destinationRule(input: RenderIstioInput, ports: readonly MeshgatePort[]): RenderedResource {
  const { name, namespace, clientNamespaces } = input.options;
  const portLevelSettings = ports
    .filter((p) => p.clientTls !== null)
    .map((p) => ({ port: { number: p.port }, tls: { mode: p.clientTls } }));
  const spec: Record<string, unknown> = { host: `${name}.${namespace}.svc.cluster.local`, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' }, ...(portLevelSettings.length > 0 ? { portLevelSettings } : {}) } };
  const exportTo = clientNamespaces === undefined || clientNamespaces.length === 0 ? null : [...new Set(clientNamespaces)].sort();
  if (exportTo !== null) spec['exportTo'] = exportTo;
  const mutual = ports.filter((p) => p.clientTls === 'ISTIO_MUTUAL');
  const disabled = ports.filter((p) => p.clientTls === 'DISABLE');
  return {
    object: { apiVersion: NETWORKING, kind: 'DestinationRule', metadata: metadata(input, ''), spec },
    comment: [
      "For meshgate's clients: how their sidecars send to meshgate's Service (port numbers are the Service's; this assumes each equals meshgate's container port).",
      ...(mutual.length === 0 ? [] : [`ISTIO_MUTUAL on ${mutual.map((p) => `${p.port} ${p.label}`).join(', ')}: the client's sidecar originates Istio mTLS with the workload's SVID, which is the identity meshgate sees.`]),
      ...(disabled.length === 0 ? [] : [`DISABLE on ${disabled.map((p) => `${p.port} ${p.label}`).join(', ')}: the client application speaks TLS to meshgate itself; its sidecar passes the bytes through.`]),
      exportTo === null ? 'Visible to clients in every namespace.' : `Visible to clients in ${exportTo.join(', ')} only.`,
    ],
  };
}

function sidecar(input: RenderIstioInput, selector: Record<string, string>, hosts: readonly string[], unknown: readonly string[]): RenderedResource {
  const mode = unknown.length === 0 ? 'REGISTRY_ONLY' : 'ALLOW_ANY';
  return {
    object: {
      apiVersion: NETWORKING,
      kind: 'Sidecar',
      metadata: metadata(input, ''),
      spec: { workloadSelector: { labels: selector }, egress: [{ hosts: [...hosts] }], outboundTrafficPolicy: { mode } },
    },
    comment: [
      "meshgate's own egress: istiod and the destinations its configuration names (MariaDB, Google, token issuers, the trace collector).",
      mode === 'REGISTRY_ONLY'
        ? 'REGISTRY_ONLY: nothing else, so a compromised meshgate cannot reach other services.'
        : `ALLOW_ANY: ${unknown.join(', ')} name their destination only inside a secret, which this rendering does not read; add those hosts here and switch to REGISTRY_ONLY.`,
    ],
  };
}

function serviceEntry(input: RenderIstioInput, endpoint: EgressEndpoint, suffix: string): RenderedResource {
  const portName = `${endpoint.protocol.toLowerCase()}-${endpoint.purpose}`.slice(0, 63);
  const spec: Record<string, unknown> = {
    hosts: [...endpoint.hosts],
    ...(endpoint.address === null ? {} : { addresses: [endpoint.address] }),
    ports: [{ number: endpoint.port, name: portName, protocol: endpoint.protocol }],
    location: 'MESH_EXTERNAL',
    resolution: endpoint.address === null ? 'DNS' : 'STATIC',
    ...(endpoint.address === null ? {} : { endpoints: [{ address: endpoint.address }] }),
    exportTo: ['.'],
  };
  const why: Record<string, string> = {
    mariadb: 'The MariaDB server behind meshgate, outside the mesh (TCP: MySQL starts its TLS inside the protocol).',
    googleapis: 'Google APIs meshgate calls for Firestore: the Firestore API and the token endpoints for service-account impersonation.',
    tracing: 'The OTLP collector meshgate sends spans to.',
    redis: 'The Redis meshgate replicas share rate limits through.',
    'firestore-emulator': 'The Firestore emulator (development).',
  };
  return {
    object: { apiVersion: NETWORKING, kind: 'ServiceEntry', metadata: metadata(input, suffix), spec },
    comment: [why[endpoint.purpose] ?? 'A token issuer whose JWKS meshgate fetches to verify tokens.', 'Exported to meshgate\'s namespace only.'],
  };
}

export function renderIstio(input: RenderIstioInput): RenderedIstio {
  const { options, config, documents } = input;
  const selector = { ...(options.selector ?? { app: options.name }) };
  const warnings: string[] = [];
  const ports = meshgatePorts(config, enginesOf(documents));
  for (const p of ports) {
    if (isLoopback(p.host)) warnings.push(`${p.label} listens on ${p.host}:${p.port}, which other pods cannot reach; set its host to 0.0.0.0`);
  }
  if (ports.length === 0) warnings.push('no port to render: give --config, or a policy that grants MariaDB or Firestore access');
  const excludedPorts = ports.filter((p) => p.termination === 'meshgate').map((p) => String(p.port));
  const excluded = excludedPorts.join(',');
  const l4 = authorizationRules(documents, ports);

  const resources: RenderedResource[] = [peerAuthentication(input, selector, ports, excluded)];
  if (l4.deny.length > 0) {
    resources.push(
      authorizationPolicy(input, selector, 'DENY', l4.deny, [
        "meshgate's DENY rules that L4 can express exactly: callers meshgate refuses whatever they ask, refused by the sidecar first.",
        'Never wider than meshgate: a DENY that names claims, auth methods or only some paths stays with meshgate alone.',
      ]),
    );
  }
  if (ports.length > 0) {
    resources.push(
      authorizationPolicy(input, selector, 'ALLOW', l4.allow, [
        'Who may reach which port of meshgate. An ALLOW policy makes the sidecar deny what no rule allows, like meshgate; ' +
          'every rule here is at least as wide as the meshgate rule it comes from (L7 facts such as claims, databases and ' +
          'collections are left to meshgate), so the sidecar never refuses a caller meshgate would allow.',
        ...(l4.notes.length === 0 ? [] : ['Enforced by meshgate only:', ...l4.notes.map((n) => `- ${n}`)]),
      ]),
    );
  }
  resources.push(destinationRule(input, ports));

  const egress = egressPlan(config, options.namespace);
  if (config !== null) {
    const hosts = ['istio-system/*', ...egress.inCluster, ...egress.external.flatMap((e) => e.hosts.map((h) => `./${h}`))];
    resources.push(sidecar(input, selector, [...new Set(hosts)], egress.unknown));
    if (egress.unknown.length > 0) warnings.push(`the Sidecar allows any egress: ${egress.unknown.join(', ')} come from secrets; add their hosts and switch it to REGISTRY_ONLY`);
    const purposes = egress.external.map((e) => e.purpose);
    for (const endpoint of egress.external) {
      const shared = purposes.filter((p) => p === endpoint.purpose).length > 1;
      resources.push(serviceEntry(input, endpoint, shared ? `${endpoint.purpose}-${endpoint.port}` : endpoint.purpose));
    }
  }
  return { resources, podAnnotations: excluded === '' ? {} : { 'traffic.sidecar.istio.io/excludeInboundPorts': excluded }, warnings };
}
