/**
 * meshgate's inbound ports as Istio must treat them, read from the configuration. What
 * decides everything below is who terminates the caller's TLS on each port:
 *
 * - meshgate itself (MySQL in both modes, Firestore `tls: mtls`, the admin API, the signer):
 *   the caller's certificate is checked by meshgate, so the sidecar must not touch the bytes.
 *   The port is excluded from inbound capture and its peer authentication is DISABLE; an
 *   Istio policy could see no principal there anyway (the TLS runs end to end with meshgate).
 * - the sidecar (Firestore `tls: plaintext`): the sidecar terminates Istio mTLS and vouches
 *   for the caller in x-forwarded-client-cert. STRICT, and the L4 principal is exactly the
 *   identity meshgate decides on, so the AuthorizationPolicy can mirror the policy there.
 * - nobody (the plain-HTTP metrics listener): Prometheus scrapes it, often from outside the
 *   mesh, so PERMISSIVE and open to any source.
 */
import type { MeshgateConfig } from '../config/schema.ts';

export type PortRole = 'mysql' | 'firestore' | 'admin' | 'signer' | 'metrics';

/** Who terminates the caller's TLS; see the file comment. */
export type PortTermination = 'meshgate' | 'sidecar' | 'none';

export interface MeshgatePort {
  readonly role: PortRole;
  /** The container port meshgate listens on (Istio's workload port). */
  readonly port: number;
  readonly host: string;
  readonly termination: PortTermination;
  /**
   * How a client's sidecar sends to this port: ISTIO_MUTUAL where the sidecar's mTLS is the
   * transport meshgate expects (Firestore behind meshgate's sidecar, MySQL `first-byte`),
   * DISABLE where the client application speaks TLS to meshgate itself and its sidecar must
   * pass the bytes through unwrapped; null where the mesh default is right (metrics).
   */
  readonly clientTls: 'ISTIO_MUTUAL' | 'DISABLE' | null;
  /**
   * For a sidecar-terminated port: whether meshgate believes the sidecar's XFCC header (it
   * has trustedHops). Without, meshgate sees only bearer tokens there, not the L4 principal.
   */
  readonly xfccTrusted: boolean;
  /** A short phrase for comments: `MySQL (starttls)`. */
  readonly label: string;
}

/** The parts of the configuration the rendering reads; a full MeshgateConfig satisfies it. */
export type RenderConfig = Pick<MeshgateConfig, 'listener' | 'upstream' | 'firestore' | 'admin' | 'signer' | 'metrics' | 'tokens' | 'tracing' | 'state' | 'audit' | 'throttle' | 'trust'>;

const LISTEN = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/;

function listenAddress(listen: string): { host: string; port: number } | null {
  const match = LISTEN.exec(listen);
  return match === null ? null : { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

/**
 * Ports in ascending order (one entry per port number; the first role configured wins
 * when two share one, which meshgate itself would refuse at start).
 * Without a configuration, the engines the policy names at their default ports.
 */
export function meshgatePorts(config: RenderConfig | null, engines: { readonly mysql: boolean; readonly firestore: boolean }): MeshgatePort[] {
  const ports: MeshgatePort[] = [];
  const meshgateTls = (role: PortRole, port: number, host: string, label: string, clientTls: 'ISTIO_MUTUAL' | 'DISABLE' = 'DISABLE'): MeshgatePort => ({
    role,
    port,
    host,
    termination: 'meshgate',
    clientTls,
    xfccTrusted: false,
    label,
  });
  if (config === null) {
    if (engines.mysql) ports.push(meshgateTls('mysql', 3307, '0.0.0.0', 'MySQL (starttls)'));
    if (engines.firestore) ports.push(meshgateTls('firestore', 8443, '0.0.0.0', 'Firestore gRPC (mtls)'));
    return ports;
  }
  const { listener, firestore, admin, signer, metrics } = config;
  if (listener !== undefined) {
    const firstByte = listener.tls.mode === 'first-byte';
    ports.push(meshgateTls('mysql', listener.port, listener.host, `MySQL (${listener.tls.mode})`, firstByte ? 'ISTIO_MUTUAL' : 'DISABLE'));
  }
  if (firestore !== undefined) {
    if (firestore.tls === 'mtls') ports.push(meshgateTls('firestore', firestore.port, firestore.host, 'Firestore gRPC (mtls)'));
    else {
      ports.push({
        role: 'firestore',
        port: firestore.port,
        host: firestore.host,
        termination: 'sidecar',
        clientTls: 'ISTIO_MUTUAL',
        xfccTrusted: firestore.trustedHops.length > 0,
        label: 'Firestore gRPC (plaintext behind the sidecar, identity from XFCC)',
      });
    }
  }
  if (admin !== undefined) ports.push(meshgateTls('admin', admin.port, admin.host, 'admin API (HTTPS)'));
  if (signer !== undefined) ports.push(meshgateTls('signer', signer.port, signer.host, 'SVID signer (HTTPS)'));
  const metricsAt = metrics?.listen === undefined ? null : listenAddress(metrics.listen);
  if (metricsAt !== null) {
    ports.push({ role: 'metrics', port: metricsAt.port, host: metricsAt.host, termination: 'none', clientTls: null, xfccTrusted: false, label: 'metrics (plain HTTP)' });
  }
  const seen = new Set<number>();
  return ports.filter((p) => p.port !== 0 && !seen.has(p.port) && seen.add(p.port)).sort((a, b) => a.port - b.port);
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}
