/**
 * The built-in CA against real peers: the openssl CLI, and a node:tls handshake configured
 * the way meshgate's listener is (requestCert, rejectUnauthorized off, ca = trust bundle).
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { isMeshgateError, type ErrorCode } from '../../src/errors/index.ts';
import { initCa, issueServerCert, issueSvid, type IssuedCertificate } from '../../src/identity/ca.ts';
import { verifyTlsPeer } from '../../src/identity/peer.ts';
import type { Identity, TlsPeerFacts } from '../../src/identity/types.ts';
import { makeOddLeaf, makeTempDir } from '../helpers/certs.ts';

const run = promisify(execFile);
const SPIFFE_ID = 'spiffe://example.org/ns/shop/sa/orders';
const OPTIONS = { trustDomains: ['example.org'] } as const;

/** What the listener would read off the socket; Node types authorizationError as Error but sets a code string. */
function factsOf(socket: TLSSocket): TlsPeerFacts {
  const reason = socket.authorizationError as unknown;
  return {
    authorized: socket.authorized,
    authorizationError: reason === undefined || reason === null ? null : String((reason as { code?: unknown }).code ?? reason),
    peerCertificate: socket.getPeerX509Certificate() ?? null,
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.standardName ?? null,
  };
}

interface HandshakeResult {
  /** Null when the handshake itself failed on the server side. */
  readonly facts: TlsPeerFacts | null;
  readonly identity: Identity | null;
  readonly error: unknown;
}

/** One TLS connection to a server on port 0; resolves with the server's view, then closes both ends. */
async function handshake(
  server: { key: string; cert: string; ca: string },
  client: { key?: string; cert?: string },
): Promise<HandshakeResult> {
  let resolveResult!: (result: HandshakeResult) => void;
  const result = new Promise<HandshakeResult>((r) => (resolveResult = r));
  const tlsServer = createServer({ ...server, requestCert: true, rejectUnauthorized: false }, (socket) => {
    const facts = factsOf(socket);
    try {
      resolveResult({ facts, identity: verifyTlsPeer(facts, OPTIONS), error: null });
    } catch (error) {
      resolveResult({ facts, identity: null, error });
    }
    socket.end();
  });
  tlsServer.on('tlsClientError', (error) => resolveResult({ facts: null, identity: null, error }));
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  const { port } = tlsServer.address() as AddressInfo;
  const socket = connect({ host: '127.0.0.1', port, ca: server.ca, ...client });
  socket.on('error', () => undefined); // the server ends the connection; that is expected
  const clientTrustsServer = new Promise<boolean>((r) => {
    socket.once('secureConnect', () => r(socket.authorized));
    socket.once('close', () => r(false));
  });
  try {
    const outcome = await result;
    assert.equal(await clientTrustsServer, true, 'the client should trust the server certificate');
    return outcome;
  } finally {
    socket.destroy();
    await new Promise<void>((r) => tlsServer.close(() => r()));
  }
}

function refusal(result: HandshakeResult, code: ErrorCode): string {
  assert.equal(result.identity, null);
  assert.ok(isMeshgateError(result.error), String(result.error));
  assert.equal(result.error.code, code, result.error.message);
  return result.error.message;
}

describe('built-in CA with openssl and node:tls', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let svid: IssuedCertificate;
  let server: { key: string; cert: string; ca: string };
  let foreign: IssuedCertificate;

  before(async () => {
    ({ dir: root, cleanup } = await makeTempDir('meshgate-ca-openssl-'));
    const caDir = join(root, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org' });
    svid = await issueSvid({ caDir, spiffeId: SPIFFE_ID, outDir: join(root, 'client'), ttlSeconds: 3600 });
    const serverFiles = await issueServerCert({ caDir, outDir: join(root, 'server') });
    server = {
      key: await readFile(serverFiles.keyPath, 'utf8'),
      cert: await readFile(serverFiles.certPath, 'utf8'),
      ca: await readFile(serverFiles.bundlePath, 'utf8'),
    };
    // Same trust domain, different root: only the chain check can tell them apart.
    const otherCaDir = join(root, 'other-ca');
    await initCa({ dir: otherCaDir, trustDomain: 'example.org' });
    foreign = await issueSvid({ caDir: otherCaDir, spiffeId: SPIFFE_ID, outDir: join(root, 'foreign') });
  });
  after(() => cleanup());

  it('openssl verifies the SVID and server certificate against the bundle (strict X.509)', async () => {
    const client = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', svid.bundlePath, svid.certPath]);
    assert.match(client.stdout, /: OK$/m);
    const serverCert = join(root, 'server', 'server.crt');
    const srv = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', svid.bundlePath, serverCert]);
    assert.match(srv.stdout, /: OK$/m);
    await assert.rejects(run('openssl', ['verify', '-CAfile', svid.bundlePath, foreign.certPath]));
  });

  it('openssl shows the URI SAN, critical, on an empty subject', async () => {
    const { stdout } = await run('openssl', ['x509', '-in', svid.certPath, '-noout', '-text']);
    assert.match(stdout, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\/ns\/shop\/sa\/orders\s/);
    assert.match(stdout, /Subject: *\n/);
    assert.match(stdout, /CA:FALSE/);
    assert.match(stdout, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(stdout, /ASN1 OID: prime256v1/);
    const key = await run('openssl', ['pkey', '-in', svid.keyPath, '-noout', '-text_pub']);
    assert.match(key.stdout, /ASN1 OID: prime256v1/);
  });

  it('a TLS handshake with the issued SVID is authorized and yields its identity', async () => {
    const result = await handshake(server, {
      key: await readFile(svid.keyPath, 'utf8'),
      cert: await readFile(svid.certPath, 'utf8'),
    });
    assert.equal(result.facts?.authorized, true);
    assert.equal(result.facts?.authorizationError, null);
    assert.equal(result.error, null, String(result.error));
    assert.equal(result.identity?.spiffeId, SPIFFE_ID);
    assert.equal(result.identity?.principal, 'example.org/ns/shop/sa/orders');
    assert.equal(result.identity?.certificate.serialNumber, svid.serialNumber);
  });

  it('a certificate from a different CA is MG_CLIENT_CERT_UNTRUSTED', async () => {
    const result = await handshake(server, {
      key: await readFile(foreign.keyPath, 'utf8'),
      cert: await readFile(foreign.certPath, 'utf8'),
    });
    assert.equal(result.facts?.authorized, false);
    const message = refusal(result, 'MG_CLIENT_CERT_UNTRUSTED');
    assert.match(message, new RegExp(`\\(${String(result.facts?.authorizationError)}\\)`));
    assert.match(message, /trust bundle/);
  });

  it('a self-signed client certificate is MG_CLIENT_CERT_UNTRUSTED', async () => {
    const leaf = await makeOddLeaf(null, { uris: [SPIFFE_ID] });
    const result = await handshake(server, { key: leaf.keyPem, cert: leaf.certPem });
    assert.equal(result.facts?.authorizationError, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    assert.match(refusal(result, 'MG_CLIENT_CERT_UNTRUSTED'), /self-signed/);
  });

  it('no client certificate is MG_CLIENT_CERT_MISSING', async () => {
    const result = await handshake(server, {});
    assert.equal(result.facts?.peerCertificate, null);
    assert.match(refusal(result, 'MG_CLIENT_CERT_MISSING'), /--ssl-cert/);
  });
});
