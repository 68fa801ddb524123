/**
 * meshgate's side of TLS toward MariaDB (`upstream.tls`): the client certificate meshgate
 * presents, the CA that signs MariaDB's certificate, and how much of it to check. One loaded
 * copy serves every connection meshgate makes to MariaDB — sessions and the pool (node's tls
 * over the MySQL SSLRequest), the admin account's and the settings reader's (mysql2) — and
 * follows its files like the listener's certificate does (tls-material.ts), so a renewed
 * certificate reaches all of them at once.
 *
 * The certificate's subject and issuer are what lease accounts are created to require
 * (`REQUIRE SUBJECT … AND ISSUER …`): a lease password is then useless without meshgate's
 * private key.
 */
import { X509Certificate } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import { mgError } from '../errors/index.ts';
import { onelineName, watchTlsMaterial, type TlsMaterial } from '../identity/index.ts';

/** `verify-full`: MariaDB's certificate chains to the CA and names the host meshgate connects to; `verify-ca`: the chain only. */
export type UpstreamVerify = 'verify-full' | 'verify-ca';

export interface MariadbClientTlsSettings {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly verify?: UpstreamVerify;
}

/** What MariaDB must see of a client certificate, in the one-line form it compares (`/O=meshgate/CN=…`). */
export interface AccountRequirement {
  readonly subject: string;
  readonly issuer: string;
}

/** mysql2's `ssl` option. */
export interface Mysql2Ssl {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly rejectUnauthorized: true;
  readonly verifyIdentity: boolean;
  readonly minVersion: 'TLSv1.2';
}

/** What a mysql2 connection (or pool) to MariaDB takes for TLS: `ssl`, and for an address under verify-full, `stream`. */
export interface Mysql2TlsOptions {
  readonly ssl: Mysql2Ssl;
  readonly stream?: () => Socket;
}

export interface MariadbClientTls {
  readonly verify: UpstreamVerify;
  /** The files, for messages that tell an operator what to check. */
  readonly files: { readonly ca: string; readonly cert: string };
  /** Options for tls.connect over `socket`, already connected to `host` and past MySQL's SSLRequest. */
  connectOptions(socket: Socket, host: string): ConnectionOptions;
  /** The same material for mysql2 connections to host:port; `ssl` is one object per loaded version, so mysql2 reuses its context. */
  mysql2(host: string, port: number): Mysql2TlsOptions;
  /** The subject and issuer of the certificate now presented; null when they have no certain one-line form. */
  requirement(): AccountRequirement | null;
  /** Calls `listener` after the files changed and loaded; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  close(): void;
}

export interface MariadbClientTlsLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The requirement a certificate's names make, or null (an empty subject, or one the one-line form cannot say plainly). */
export function requirementOf(certPem: Buffer | string): AccountRequirement | null {
  const certificate = new X509Certificate(certPem);
  const subject = onelineName(certificate.subject);
  const issuer = onelineName(certificate.issuer);
  return subject === null || issuer === null ? null : { subject, issuer };
}

/** Loads the files (MG_TLS_MATERIAL_INVALID when they do not), then follows them. */
export async function openMariadbClientTls(settings: MariadbClientTlsSettings, log?: MariadbClientTlsLog): Promise<MariadbClientTls> {
  const verify = settings.verify ?? 'verify-full';
  const material: TlsMaterial = await watchTlsMaterial({
    certFile: settings.cert,
    keyFile: settings.key,
    bundleFiles: [settings.ca],
    contextOptions: { minVersion: 'TLSv1.2' },
    ...(log === undefined ? {} : { log }),
    onChange: (change) => log?.info('upstream TLS files reloaded', { subject: change.certificate.subject, notAfter: change.certificate.notAfter }),
  });
  let mysql2: Mysql2Ssl | null = null;
  let requirement: { readonly cert: unknown; readonly value: AccountRequirement | null } | null = null;
  material.subscribe(() => {
    mysql2 = null;
  });
  return {
    verify,
    files: { ca: settings.ca, cert: settings.cert },
    connectOptions(socket, host) {
      return {
        socket,
        secureContext: material.secureContext(),
        // SNI names hosts, never addresses.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        rejectUnauthorized: true,
        checkServerIdentity: verify === 'verify-full' ? (_name, certificate) => checkServerIdentity(host, certificate) : () => undefined,
      };
    },
    mysql2(host, port) {
      if (mysql2 === null) {
        const options = material.contextOptions();
        mysql2 = {
          ca: options.ca as Buffer,
          cert: options.cert as Buffer,
          key: options.key as Buffer,
          rejectUnauthorized: true,
          verifyIdentity: verify === 'verify-full',
          minVersion: 'TLSv1.2',
        };
      }
      // node checks the name of a TLS server reached over a socket it is handed by the host
      // that socket looked up, and an address is never looked up: it would check "localhost"
      // (mysql2 sends no servername for an address). The socket is told its host, as a lookup would.
      if (verify !== 'verify-full' || isIP(host) === 0) return { ssl: mysql2 };
      return {
        ssl: mysql2,
        stream: () => {
          const socket = netConnect({ host, port, noDelay: true, keepAlive: true });
          (socket as Socket & { _host: string | null })._host = host;
          return socket;
        },
      };
    },
    requirement() {
      const cert = material.contextOptions().cert;
      if (requirement === null || requirement.cert !== cert) {
        const value = requirementOf(cert as Buffer);
        if (value === null) log?.error('upstream.tls.cert has no subject MariaDB can require; new lease accounts cannot be created to require it', { cert: settings.cert });
        requirement = { cert, value };
      }
      return requirement.value;
    },
    subscribe: (listener) => material.subscribe(listener),
    close: () => material.close(),
  };
}

/** Why TLS with MariaDB failed, in words that point at upstream.tls. */
export function upstreamTlsError(tls: MariadbClientTls, where: string, host: string, error: Error & { code?: string }): Error {
  const code = error.code ?? 'error';
  const name = code === 'ERR_TLS_CERT_ALTNAME_INVALID';
  const hint = name
    ? `MariaDB's certificate does not name ${host}: connect by a name it has (upstream.host), issue it with that name, or use upstream.tls.verify: verify-ca`
    : `check that upstream.tls.ca (${tls.files.ca}) signs MariaDB's ssl_cert, and that MariaDB's ssl_ca trusts upstream.tls.cert (${tls.files.cert})`;
  return mgError('MG_UPSTREAM_UNAVAILABLE', `TLS with ${where} failed (${code}: ${error.message}): ${hint}`, error);
}
