/**
 * Caller identity from Envoy's `x-forwarded-client-cert` (XFCC), for HTTP/gRPC behind an
 * Istio sidecar that terminated the caller's mTLS.
 * Grammar: https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
 *   header  = element *( "," element )     one element per proxy, appended in hop order
 *   element = pair *( ";" pair )
 *   pair    = key "=" value                keys case-insensitive: By Hash Cert Chain Subject URI DNS
 *   value   = token / DQUOTE *( char / "\" char ) DQUOTE   quoted when it holds , ; = (Subject always)
 *
 * Only the LAST element is believed, and only when the TCP peer is a configured local hop:
 * Istio's inbound sidecar runs APPEND_FORWARD, so everything before its own element came
 * from the caller, and Envoy removes the header altogether when the caller did not present
 * a certificate. From any other address the header is the caller's own claim: it is
 * reported as stripped and never parsed.
 */
import { BlockList, isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { isMeshgateError, mgError, type MeshgateError } from '../errors/index.ts';
import { uriSansOf } from './san.ts';
import { parseSpiffeId, principalOf } from './spiffe.ts';
import type { Identity, SpiffeId } from './types.ts';

/** Envoy's default limit for all request headers together is 60 KiB; one header cannot exceed it. */
export const MAX_XFCC_LENGTH = 64 * 1024;

export interface XfccElement {
  /** In header order; keys lower-cased (they are case-insensitive), values unquoted and unescaped. */
  readonly pairs: readonly (readonly [key: string, value: string])[];
}

export interface XfccTrustOptions {
  /** Addresses or CIDRs of the local sidecar, e.g. 127.0.0.6 (Istio's inbound source) and 127.0.0.1. */
  readonly trustedHops: readonly string[];
  readonly trustDomains: readonly string[];
}

export interface XfccResult {
  readonly identity: Identity | null;
  /** True when a header arrived from an untrusted hop and was ignored (the audit event says so). */
  readonly stripped: boolean;
  readonly reason: string;
}

const KEY_CHAR = /^[A-Za-z0-9_-]$/;
const TOKEN_STOP = /^[,;="\s]$/;
const HASH = /^[0-9a-fA-F]{64}$/;

function show(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

function malformed(problem: string, cause?: unknown): MeshgateError {
  return mgError('MG_XFCC_MALFORMED', `the x-forwarded-client-cert header from the local proxy ${problem}`, cause);
}

function isControl(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return (code < 0x20 && ch !== '\t') || code === 0x7f;
}

/** Parses the whole header; throws MG_XFCC_MALFORMED naming the offset of the first problem. */
export function parseXfcc(header: string): XfccElement[] {
  if (typeof header !== 'string') throw new TypeError('parseXfcc expects a string');
  if (header.length > MAX_XFCC_LENGTH) throw malformed(`is longer than ${MAX_XFCC_LENGTH} characters`);
  const n = header.length;
  const elements: XfccElement[] = [];
  let pairs: (readonly [string, string])[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  skipSpace(); // a comma-joined repeated header carries ", " between elements
  if (i === n) throw malformed('is empty');
  for (;;) {
    const keyStart = i;
    while (i < n && KEY_CHAR.test(header[i] as string)) i++;
    if (i === keyStart) throw malformed(`has no key at offset ${i} (found ${show(header.slice(i))})`);
    const key = header.slice(keyStart, i).toLowerCase();
    if (header[i] !== '=') throw malformed(`has no "=" after the key ${show(key)} at offset ${i}`);
    i++;
    let value = '';
    if (header[i] === '"') {
      const quoteAt = i++;
      let closed = false;
      while (i < n) {
        const ch = header[i] as string;
        if (isControl(ch)) throw malformed(`has a control character in a quoted value at offset ${i}`);
        if (ch === '"') {
          closed = true;
          i++;
          break;
        }
        if (ch === '\\') {
          if (i + 1 >= n) break;
          value += header[i + 1];
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      if (!closed) throw malformed(`has a quoted value opened at offset ${quoteAt} that never closes`);
    } else {
      const start = i;
      while (i < n && !TOKEN_STOP.test(header[i] as string) && !isControl(header[i] as string)) i++;
      value = header.slice(start, i);
    }
    pairs.push([key, value]);
    skipSpace();
    if (i === n) break;
    const separator = header[i];
    i++;
    if (separator === ';') continue;
    if (separator !== ',') throw malformed(`has ${show(separator ?? '')} at offset ${i - 1} where ";" or "," belongs`);
    elements.push({ pairs });
    pairs = [];
    skipSpace();
    if (i === n) throw malformed('ends with ","');
  }
  elements.push({ pairs });
  return elements;
}

function valuesOf(element: XfccElement, key: string): string[] {
  return element.pairs.filter(([k]) => k === key).map(([, v]) => v);
}

/** Formats a hex SHA-256 the way node:crypto prints fingerprints (AB:CD:...), so audit has one form. */
function colonHex(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

// Trusted hops are compiled once per options object: a server passes the same frozen config every request.
const hopLists = new WeakMap<readonly string[], BlockList>();

function hopList(trustedHops: readonly string[]): BlockList {
  const cached = hopLists.get(trustedHops);
  if (cached !== undefined) return cached;
  const list = new BlockList();
  for (const entry of trustedHops) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = prefix === undefined ? null : Number(prefix);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== null && (!/^\d{1,3}$/.test(prefix ?? '') || bits > max))) {
      throw mgError('MG_CONFIG_INVALID', `trusted hop ${show(entry)} is not an IP address or CIDR (e.g. 127.0.0.6, 10.0.0.0/8, ::1)`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === null) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  hopLists.set(trustedHops, list);
  return list;
}

/** The peer as an address BlockList can check; `::ffff:127.0.0.6` (a dual-stack socket) is IPv4. */
export function isTrustedHop(remoteAddress: string, trustedHops: readonly string[]): boolean {
  const list = hopList(trustedHops);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  const address = mapped?.[1] ?? remoteAddress;
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

function soleSpiffeId(element: XfccElement): SpiffeId {
  const uris = valuesOf(element, 'uri');
  if (uris.length !== 1) {
    throw mgError(
      'MG_SPIFFE_ID_INVALID',
      `the x-forwarded-client-cert element added by the local proxy must carry exactly one URI (the caller's SPIFFE ID), and it carries ${uris.length}`,
    );
  }
  try {
    return parseSpiffeId(uris[0] as string);
  } catch (error) {
    if (!isMeshgateError(error)) throw error;
    throw mgError('MG_SPIFFE_ID_INVALID', `the x-forwarded-client-cert URI: ${error.message}`, error);
  }
}

/** What XFCC tells of the certificate: Hash always (Istio), the rest only when Cert is forwarded. */
function certificateOf(element: XfccElement, uri: string): Identity['certificate'] {
  const [hash] = valuesOf(element, 'hash');
  if (hash !== undefined && !HASH.test(hash)) throw malformed('has a Hash that is not a hex SHA-256');
  const [certValue] = valuesOf(element, 'cert');
  if (certValue === undefined) {
    return { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: hash === undefined ? '' : colonHex(hash) };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(decodeURIComponent(certValue));
  } catch (error) {
    throw malformed('has a Cert that is not a URL-encoded PEM certificate', error);
  }
  if (hash !== undefined && colonHex(hash) !== cert.fingerprint256) throw malformed('has a Hash that does not match its Cert');
  let sans: string[];
  try {
    sans = uriSansOf(cert.subjectAltName);
  } catch (error) {
    throw malformed("has a Cert whose subjectAltName meshgate cannot read", error);
  }
  if (sans.length !== 1 || sans[0] !== uri) throw malformed('has a URI that differs from the URI SAN of its Cert');
  return {
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
  };
}

/**
 * The caller's identity from XFCC. No header, or a header from an untrusted hop: no identity
 * (never an error: the request may still authenticate another way). From a trusted hop, a
 * header that does not yield exactly one trusted SPIFFE ID is refused with a MeshgateError:
 * MG_XFCC_MALFORMED, MG_SPIFFE_ID_INVALID or MG_TRUST_DOMAIN_UNTRUSTED.
 */
export function identityFromXfcc(header: string | undefined, hop: { readonly remoteAddress: string }, options: XfccTrustOptions): XfccResult {
  if (header === undefined || header.trim() === '') {
    return { identity: null, stripped: false, reason: 'no x-forwarded-client-cert header' };
  }
  const remote = typeof hop.remoteAddress === 'string' ? hop.remoteAddress : '';
  const trusted = isTrustedHop(remote, options.trustedHops);
  if (!trusted) {
    const configured = options.trustedHops.length === 0 ? 'none are configured' : `trusted: ${options.trustedHops.join(', ')}`;
    return {
      identity: null,
      stripped: true,
      reason: `x-forwarded-client-cert from ${show(remote)}, which is not a trusted hop (${configured}); the header was stripped and ignored`,
    };
  }
  const elements = parseXfcc(header);
  const element = elements[elements.length - 1] as XfccElement;
  const id = soleSpiffeId(element);
  if (!options.trustDomains.includes(id.trustDomain)) {
    const configured = options.trustDomains.length === 0 ? 'none are configured' : `trusted: ${options.trustDomains.join(', ')}`;
    throw mgError(
      'MG_TRUST_DOMAIN_UNTRUSTED',
      `the trust domain ${JSON.stringify(id.trustDomain)} of ${id.uri} (from x-forwarded-client-cert) is not trusted by meshgate (${configured})`,
    );
  }
  const identity: Identity = {
    spiffeId: id.uri,
    trustDomain: id.trustDomain,
    namespace: id.namespace,
    serviceAccount: id.serviceAccount,
    principal: principalOf(id),
    authMethod: 'xfcc',
    certificate: certificateOf(element, id.uri),
  };
  return {
    identity,
    stripped: false,
    reason: `x-forwarded-client-cert from trusted hop ${remote}: ${id.uri} (element ${elements.length} of ${elements.length})`,
  };
}
