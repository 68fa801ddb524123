/**
 * Settings for @google-cloud/firestore clients of meshgate's Firestore port and of the
 * emulator, shared by the demo, the tests and the benchmarks, so that none of them makes the
 * SDK reach for Google or print library warnings on a normal run.
 */
import { isIP } from 'node:net';

/** The grpc-js module the SDK itself loads (google-gax's): its credentials pass the SDK's instanceof checks. */
export interface SdkGrpc {
  readonly credentials: { createSsl(ca: Buffer, key: Buffer, cert: Buffer): unknown };
}

/**
 * Without a universe domain, google-gax asks Application Default Credentials for one before
 * opening a channel; with no Google credentials on the machine, google-auth-library then
 * probes the GCE metadata server and prints a MetadataLookupWarning. Neither meshgate nor the
 * emulator takes Google credentials, so the answer is given up front.
 */
const NO_CREDENTIAL_LOOKUP = { universeDomain: 'googleapis.com' } as const;

/**
 * A client of meshgate's Firestore port with a workload's SVID. grpc-js would send an IP
 * address as the TLS server name, which RFC 6066 forbids (Node warns, DEP0123), so for an IP
 * the name checked is `serverName`, one meshgate's certificate carries (`meshgate ca
 * issue-server` writes localhost by default).
 */
export function meshgateClientSettings(
  grpc: SdkGrpc,
  target: { readonly host: string; readonly port: number; readonly serverName?: string },
  files: { readonly ca: Buffer; readonly key: Buffer; readonly cert: Buffer },
): Record<string, unknown> {
  return {
    host: target.host,
    port: target.port,
    ssl: true,
    sslCreds: grpc.credentials.createSsl(files.ca, files.key, files.cert),
    ...(isIP(target.host) === 0 ? {} : { 'grpc.ssl_target_name_override': target.serverName ?? 'localhost' }),
    ...NO_CREDENTIAL_LOOKUP,
  };
}

/** A client of the emulator itself, as its owner (seeding, checking what really happened). */
export function emulatorClientSettings(target: { readonly host: string; readonly port: number }): Record<string, unknown> {
  return { host: target.host, port: target.port, ssl: false, customHeaders: { Authorization: 'Bearer owner' }, ...NO_CREDENTIAL_LOOKUP };
}
