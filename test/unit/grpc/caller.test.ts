/** The order in which a gRPC caller's evidence is believed, without sockets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { resolveCaller, type CallerOptions } from '../../../src/engines/grpc/caller.ts';
import { mgError } from '../../../src/errors/index.ts';
import type { Identity, TlsPeerFacts } from '../../../src/identity/types.ts';

const TD = 'cluster.local';
const HASH = 'b'.repeat(64);
const identity = (spiffeId: string, authMethod: Identity['authMethod']): Identity => ({
  spiffeId,
  trustDomain: TD,
  namespace: 'shop',
  serviceAccount: 'x',
  principal: spiffeId.slice('spiffe://'.length),
  authMethod,
  certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' },
});
const CERT_ID = `spiffe://${TD}/ns/shop/sa/from-cert`;
const TOKEN_ID = `spiffe://${TD}/ns/shop/sa/from-token`;
const XFCC_ID = `spiffe://${TD}/ns/shop/sa/from-xfcc`;
const xfcc = `By=spiffe://${TD}/ns/db/sa/meshgate;Hash=${HASH};URI=${XFCC_ID}`;
// Any certificate object will do: verifyPeer is the stand-in that decides.
const someCert = { subject: 'CN=x' } as unknown as X509Certificate;
const tlsWithCert: TlsPeerFacts = { authorized: true, authorizationError: null, peerCertificate: someCert, protocol: 'TLSv1.3', cipher: 'x' };
const tlsNoCert: TlsPeerFacts = { ...tlsWithCert, peerCertificate: null, authorized: false };

const tokensSeen: string[] = [];
const options: CallerOptions = {
  trustedHops: ['127.0.0.6'],
  trustDomains: [TD],
  verifyPeer: () => identity(CERT_ID, 'mtls'),
  verifyToken: async (token) => {
    tokensSeen.push(token);
    if (token === 'bad') throw mgError('MG_TOKEN_INVALID', 'bad token');
    return identity(TOKEN_ID, 'jwt');
  },
};

test('trusted XFCC beats the certificate and the token', async () => {
  const v = await resolveCaller({ remoteAddress: '127.0.0.6', tls: tlsWithCert, xfcc, authorization: 'Bearer t' }, options);
  assert.equal(v.identity?.spiffeId, XFCC_ID);
  assert.equal(v.xfcc?.stripped, false);
});

test('an untrusted XFCC is stripped; the certificate is the identity', async () => {
  const v = await resolveCaller({ remoteAddress: '10.0.0.9', tls: tlsWithCert, xfcc, authorization: undefined }, options);
  assert.equal(v.identity?.spiffeId, CERT_ID);
  assert.equal(v.xfcc?.stripped, true);
});

test('the certificate beats a bearer token (an emulator SDK sends "Bearer owner")', async () => {
  tokensSeen.length = 0;
  const v = await resolveCaller({ remoteAddress: '10.0.0.9', tls: tlsWithCert, xfcc: undefined, authorization: 'Bearer owner' }, options);
  assert.equal(v.identity?.spiffeId, CERT_ID);
  assert.deepEqual(tokensSeen, []);
});

test('a bearer token over TLS without a certificate', async () => {
  const v = await resolveCaller({ remoteAddress: '10.0.0.9', tls: tlsNoCert, xfcc: undefined, authorization: 'bearer  tok ' }, options);
  assert.equal(v.identity?.spiffeId, TOKEN_ID);
  const bad = await resolveCaller({ remoteAddress: '10.0.0.9', tls: tlsNoCert, xfcc: undefined, authorization: 'Bearer bad' }, options);
  assert.equal(bad.error?.code, 'MG_TOKEN_INVALID');
});

test('a bearer token in clear text is refused unless it comes through the trusted sidecar', async () => {
  const plain = await resolveCaller({ remoteAddress: '10.0.0.9', tls: null, xfcc: undefined, authorization: 'Bearer tok' }, options);
  assert.equal(plain.error?.code, 'MG_TLS_REQUIRED');
  const viaSidecar = await resolveCaller({ remoteAddress: '127.0.0.6', tls: null, xfcc: undefined, authorization: 'Bearer tok' }, options);
  assert.equal(viaSidecar.identity?.spiffeId, TOKEN_ID);
});

test('nothing at all: a refusal that says what to present', async () => {
  const v = await resolveCaller({ remoteAddress: '10.0.0.9', tls: tlsNoCert, xfcc: undefined, authorization: undefined }, options);
  assert.equal(v.error?.code, 'MG_CLIENT_CERT_MISSING');
  assert.match(v.error!.message, /client certificate.*Bearer.*sidecar/);
});

test('a certificate that fails verification is not rescued by a token', async () => {
  const failing: CallerOptions = { ...options, verifyPeer: () => { throw mgError('MG_CLIENT_CERT_EXPIRED', 'expired'); } };
  const v = await resolveCaller({ remoteAddress: '10.0.0.9', tls: tlsWithCert, xfcc: undefined, authorization: 'Bearer tok' }, failing);
  assert.equal(v.error?.code, 'MG_CLIENT_CERT_EXPIRED');
});
