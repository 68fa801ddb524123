/**
 * Where meshgate itself connects, read from the configuration: the hosts its Sidecar lets it
 * reach, and those outside the cluster, which need a ServiceEntry once the Sidecar allows
 * only registered destinations (REGISTRY_ONLY).
 */
import { isLoopback, type RenderConfig } from './ports.ts';

export interface EgressEndpoint {
  /** Names the ServiceEntry: `mariadb`, `googleapis`, `jwks-1`, `tracing`, `firestore-emulator`. */
  readonly purpose: string;
  readonly hosts: readonly string[];
  readonly port: number;
  /** TCP for MySQL (its TLS starts inside the protocol), TLS for HTTPS, HTTP for plain HTTP. */
  readonly protocol: 'TCP' | 'TLS' | 'HTTP';
  /** Set when the host is an IP address: a ServiceEntry then names it under a made-up host. */
  readonly address: string | null;
}

export interface EgressPlan {
  /** Destinations inside the cluster, as Sidecar egress hosts `namespace/fqdn`. */
  readonly inCluster: readonly string[];
  /** Destinations outside the mesh: a ServiceEntry each, and `./host` in the Sidecar. */
  readonly external: readonly EgressEndpoint[];
  /** Destinations the configuration names only through a secret (a PostgreSQL or Redis URL). */
  readonly unknown: readonly string[];
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-f:]+$/i;
const CLUSTER_SUFFIX = '.svc.cluster.local';

/** `mariadb.db.svc.cluster.local` → `db/mariadb.db.svc.cluster.local`; a short name is in meshgate's namespace. */
function inClusterHost(host: string, namespace: string): string | null {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name.endsWith(CLUSTER_SUFFIX)) {
    const parts = name.slice(0, -CLUSTER_SUFFIX.length).split('.');
    return parts.length === 2 ? `${parts[1]}/${name}` : null;
  }
  if (name.endsWith('.svc')) {
    const parts = name.slice(0, -'.svc'.length).split('.');
    return parts.length === 2 ? `${parts[1]}/${name}${CLUSTER_SUFFIX.slice('.svc'.length)}` : null;
  }
  const parts = name.split('.');
  if (parts.length === 1) return `${namespace}/${name}.${namespace}${CLUSTER_SUFFIX}`;
  // `service.namespace` is how pods commonly name a neighbour in another namespace.
  if (parts.length === 2 && !/\.(com|net|org|io|dev|cloud|internal)$/.test(name)) return `${parts[1]}/${name}${CLUSTER_SUFFIX}`;
  return null;
}

interface Destination {
  readonly purpose: string;
  readonly host: string;
  readonly port: number;
  readonly protocol: EgressEndpoint['protocol'];
}

function fromUrl(purpose: string, text: string): Destination | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const https = url.protocol === 'https:';
  const port = url.port === '' ? (https ? 443 : 80) : Number(url.port);
  return { purpose, host: url.hostname.replace(/^\[|\]$/g, ''), port, protocol: https ? 'TLS' : 'HTTP' };
}

/** The Google endpoints meshgate uses for Firestore: the API, and token minting for impersonation. */
const GOOGLE_TOKEN_HOSTS = ['iamcredentials.googleapis.com', 'oauth2.googleapis.com'];

export function egressPlan(config: RenderConfig | null, namespace: string): EgressPlan {
  if (config === null) return { inCluster: [], external: [], unknown: [] };
  const destinations: Destination[] = [];
  const unknown: string[] = [];
  if (config.upstream !== undefined) destinations.push({ purpose: 'mariadb', host: config.upstream.host, port: config.upstream.port, protocol: 'TCP' });
  const upstream = config.firestore?.upstream;
  if (upstream !== undefined && 'google' in upstream) {
    const api = fromUrl('googleapis', upstream.google.endpoint);
    if (api !== null) destinations.push(api);
    for (const host of GOOGLE_TOKEN_HOSTS) destinations.push({ purpose: 'googleapis', host, port: 443, protocol: 'TLS' });
  }
  if (upstream !== undefined && 'emulator' in upstream) {
    const [host = '', port = '0'] = upstream.emulator.split(':');
    destinations.push({ purpose: 'firestore-emulator', host, port: Number(port), protocol: 'HTTP' });
  }
  (config.tokens?.issuers ?? []).forEach((issuer, i) => {
    if ('url' in issuer.jwks) {
      const jwks = fromUrl(`jwks-${i + 1}`, issuer.jwks.url);
      if (jwks !== null) destinations.push(jwks);
    }
  });
  if (config.tracing !== undefined) {
    const otlp = fromUrl('tracing', config.tracing.otlp.endpoint);
    if (otlp !== null) destinations.push(otlp);
  }
  if (config.state.postgres !== undefined) unknown.push('state.postgres.url');
  if (config.audit.export?.postgres !== undefined) unknown.push('audit.export.postgres.url');
  const redis = config.throttle?.shared?.redis;
  if (redis !== undefined) {
    const url = typeof redis.url === 'string' ? fromUrl('redis', redis.url) : null;
    if (url === null) unknown.push('throttle.redis.url');
    else destinations.push({ ...url, protocol: 'TCP' });
  }

  const inCluster = new Set<string>();
  const external = new Map<string, { hosts: string[]; port: number; protocol: EgressEndpoint['protocol']; address: string | null }>();
  for (const d of destinations) {
    if (d.host === '' || isLoopback(d.host)) continue;
    const ip = IPV4.test(d.host) || (d.host.includes(':') && IPV6.test(d.host));
    const local = ip ? null : inClusterHost(d.host, namespace);
    if (local !== null) {
      inCluster.add(local);
      continue;
    }
    // One ServiceEntry per purpose and port, so the Google hosts share one.
    const key = `${d.purpose}:${d.port}`;
    const entry = external.get(key) ?? { hosts: [], port: d.port, protocol: d.protocol, address: ip ? d.host : null };
    const host = ip ? `${d.purpose}.meshgate.external` : d.host.toLowerCase();
    if (!entry.hosts.includes(host)) entry.hosts.push(host);
    external.set(key, entry);
  }
  return {
    inCluster: [...inCluster].sort(),
    external: [...external].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, e]) => ({ purpose: key.split(':')[0]!, hosts: e.hosts.sort(), port: e.port, protocol: e.protocol, address: e.address })),
    unknown,
  };
}
