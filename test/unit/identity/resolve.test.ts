/**
 * The identity stage every engine shares: the order in which a peer's evidence is believed,
 * and what each protocol's peer is told when it offers none. Real certificates, a stand-in
 * token verifier; no sockets.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { mgError } from '../../../src/errors/index.ts';
import { createIdentityResolver, type IdentityResolverOptions, type Peer } from '../../../src/identity/resolve.ts';
import type { Identity, TlsPeerFacts } from '../../../src/identity/types.ts';
import { DAY_MS, makeOddLeaf, makeTestCa, peerFacts } from '../../helpers/certs.ts';

const TD = 'cluster.local';
const HASH = 'b'.repeat(64);
const CERT_ID = `spiffe://${TD}/ns/shop/sa/from-cert`;
const TOKEN_ID = `spiffe://${TD}/ns/shop/sa/from-token`;
const XFCC_ID = `spiffe://${TD}/ns/shop/sa/from-xfcc`;
const xfcc = `By=spiffe://${TD}/ns/db/sa/meshgate;Hash=${HASH};URI=${XFCC_ID}`;

const tokenIdentity: Identity = {
  spiffeId: TOKEN_ID,
  trustDomain: TD,
  namespace: 'shop',
  serviceAccount: 'from-token',
  principal: TOKEN_ID.slice('spiffe://'.length),
  authMethod: 'jwt',
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
};
const tokensSeen: string[] = [];
const options: IdentityResolverOptions = {
  trustDomains: [TD],
  verifyToken: async (token) => {
    tokensSeen.push(token);
    if (token === 'bad') throw mgError('MG_TOKEN_INVALID', 'bad token');
    return tokenIdentity;
  },
};
const resolver = createIdentityResolver(options);
const grpcPeer = (over: Partial<Peer>): Peer => ({ protocol: 'grpc', remoteAddress: '10.0.0.9', tls: null, trustedHops: ['127.0.0.6'], ...over });
const bearer = (value: string) => ({ value, via: 'bearer' as const });

let tlsWithCert: TlsPeerFacts;
let expiredCert: TlsPeerFacts;
const tlsNoCert = peerFacts(null, { authorized: false });

before(async () => {
  const ca = await makeTestCa(TD);
  tlsWithCert = peerFacts((await makeOddLeaf(ca, { uris: [CERT_ID] })).cert);
  const old = Date.now() - 3 * DAY_MS;
  expiredCert = peerFacts((await makeOddLeaf(ca, { uris: [CERT_ID], notBefore: new Date(old), notAfter: new Date(old + DAY_MS) })).cert);
});

describe('identity resolution (every engine)', () => {
  test('trusted XFCC beats the certificate and the token', async () => {
    const v = await resolver.resolve(grpcPeer({ remoteAddress: '127.0.0.6', tls: tlsWithCert, xfcc, token: bearer('t') }));
    assert.equal(v.identity?.spiffeId, XFCC_ID);
    assert.equal(v.xfcc?.stripped, false);
  });

  test('an untrusted XFCC is stripped; the certificate is the identity', async () => {
    const v = await resolver.resolve(grpcPeer({ tls: tlsWithCert, xfcc }));
    assert.equal(v.identity?.spiffeId, CERT_ID);
    assert.equal(v.xfcc?.stripped, true);
  });

  test('the certificate beats a bearer token (an emulator SDK sends "Bearer owner")', async () => {
    tokensSeen.length = 0;
    const v = await resolver.resolve(grpcPeer({ tls: tlsWithCert, token: bearer('owner') }));
    assert.equal(v.identity?.spiffeId, CERT_ID);
    assert.deepEqual(tokensSeen, []);
  });

  test('a bearer token over TLS without a certificate', async () => {
    const v = await resolver.resolve(grpcPeer({ tls: tlsNoCert, token: bearer('tok') }));
    assert.equal(v.identity?.spiffeId, TOKEN_ID);
    const bad = await resolver.resolve(grpcPeer({ tls: tlsNoCert, token: bearer('bad') }));
    assert.equal(bad.error?.code, 'MG_TOKEN_INVALID');
  });

  test('a bearer token in clear text is refused unless it comes through the trusted sidecar', async () => {
    const plain = await resolver.resolve(grpcPeer({ token: bearer('tok') }));
    assert.equal(plain.error?.code, 'MG_TLS_REQUIRED');
    const viaSidecar = await resolver.resolve(grpcPeer({ remoteAddress: '127.0.0.6', token: bearer('tok') }));
    assert.equal(viaSidecar.identity?.spiffeId, TOKEN_ID);
  });

  test('nothing at all: a refusal that says what to present', async () => {
    const v = await resolver.resolve(grpcPeer({ tls: tlsNoCert }));
    assert.equal(v.error?.code, 'MG_CLIENT_CERT_MISSING');
    assert.match(v.error!.message, /client certificate.*Bearer.*sidecar/);
  });

  test('a certificate that fails verification is not rescued by a token', async () => {
    const v = await resolver.resolve(grpcPeer({ tls: expiredCert, token: bearer('tok') }));
    assert.equal(v.error?.code, 'MG_CLIENT_CERT_EXPIRED');
  });

  test('MySQL: a password token in clear text is refused before it is read; over TLS it is verified', async () => {
    tokensSeen.length = 0;
    const plain = await resolver.resolve({ protocol: 'mysql', remoteAddress: '10.0.0.9', tls: null, trustedHops: [], token: { value: 'tok', via: 'password' } });
    assert.equal(plain.error?.code, 'MG_TLS_REQUIRED');
    assert.match(plain.error!.message, /only over TLS: connect with --ssl/);
    assert.deepEqual(tokensSeen, []);
    const secured = await resolver.resolve({ protocol: 'mysql', remoteAddress: '10.0.0.9', tls: tlsNoCert, trustedHops: [], token: { value: 'tok', via: 'password' } });
    assert.equal(secured.identity?.spiffeId, TOKEN_ID);
  });

  test('MySQL without token issuers: the refusal names the client flags for a certificate', async () => {
    const certOnly = createIdentityResolver({ trustDomains: [TD] });
    assert.equal(certOnly.acceptsTokens, false);
    const plain = await certOnly.resolve({ protocol: 'mysql', remoteAddress: '10.0.0.9', tls: null, trustedHops: [] });
    assert.match(plain.error!.message, /no TLS client certificate: connect with TLS/);
    const noCert = await certOnly.resolve({ protocol: 'mysql', remoteAddress: '10.0.0.9', tls: tlsNoCert, trustedHops: [] });
    assert.match(noCert.error!.message, /--ssl-cert\/--ssl-key \(mariadb CLI\)/);
  });

  test('one certificate is verified once while it is valid, and refused once it has expired', async () => {
    let now = new Date();
    const clocked = createIdentityResolver({ trustDomains: [TD], now: () => now });
    const first = await clocked.resolve(grpcPeer({ tls: tlsWithCert }));
    const again = await clocked.resolve(grpcPeer({ tls: tlsWithCert }));
    assert.equal(again.identity, first.identity, 'the same facts object: verified once');
    now = new Date(Date.now() + 2 * 3_600_000);
    const later = await clocked.resolve(grpcPeer({ tls: tlsWithCert }));
    assert.equal(later.error?.code, 'MG_CLIENT_CERT_EXPIRED');
  });
});
