import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { initCa, issueSvid, type IssuedCertificate } from '../../../src/identity/ca.ts';
import { verifyTlsPeer } from '../../../src/identity/peer.ts';
import type { TlsPeerFacts } from '../../../src/identity/types.ts';
import { DAY_MS, HOUR_MS, makeOddLeaf, makeTempDir, makeTestCa, peerFacts, readCert, type TestCa } from '../../helpers/certs.ts';

const TRUSTED = { trustDomains: ['example.org'] } as const;
const messages: string[] = [];

function refuses(facts: TlsPeerFacts, code: ErrorCode, message: RegExp, options: { trustDomains: readonly string[]; now?: Date } = TRUSTED): void {
  assert.throws(
    () => verifyTlsPeer(facts, options),
    (error: unknown) => {
      assert.ok(isMeshgateError(error), `not a MeshgateError: ${String(error)}`);
      messages.push(error.message);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('verifyTlsPeer', () => {
  let cleanup: () => Promise<void>;
  let good: IssuedCertificate;
  let goodCert: X509Certificate;
  let expiredCert: X509Certificate;
  let expired: IssuedCertificate;
  let futureCert: X509Certificate;
  let otherDomainCert: X509Certificate;
  let testCa: TestCa;

  before(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    const dayAgo = new Date(Date.now() - DAY_MS);
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org', now: dayAgo });
    const out = join(tmp.dir, 'out');
    const spiffeId = 'spiffe://example.org/ns/shop/sa/orders';
    good = await issueSvid({ caDir, spiffeId, outDir: out, name: 'good', ttlSeconds: 3600 });
    goodCert = await readCert(good.certPath);
    expired = await issueSvid({ caDir, spiffeId, outDir: out, name: 'old', ttlSeconds: 3600, now: new Date(Date.now() - 3 * HOUR_MS) });
    expiredCert = await readCert(expired.certPath);
    const future = await issueSvid({ caDir, spiffeId, outDir: out, name: 'future', ttlSeconds: 3600, now: new Date(Date.now() + 2 * HOUR_MS) });
    futureCert = await readCert(future.certPath);

    const otherDir = join(tmp.dir, 'other-ca');
    await initCa({ dir: otherDir, trustDomain: 'other.org', now: dayAgo });
    const other = await issueSvid({ caDir: otherDir, spiffeId: 'spiffe://other.org/ns/shop/sa/orders', outDir: out, name: 'other' });
    otherDomainCert = await readCert(other.certPath);
    testCa = await makeTestCa('example.org');
  });

  after(async () => {
    await cleanup();
    for (const message of messages) assert.doesNotMatch(message, /BEGIN|PRIVATE KEY/);
  });

  it('returns the identity of a valid SVID', () => {
    const identity = verifyTlsPeer(peerFacts(goodCert), TRUSTED);
    assert.deepEqual(identity, {
      spiffeId: 'spiffe://example.org/ns/shop/sa/orders',
      trustDomain: 'example.org',
      namespace: 'shop',
      serviceAccount: 'orders',
      principal: 'example.org/ns/shop/sa/orders',
      authMethod: 'mtls',
      certificate: {
        serialNumber: good.serialNumber,
        notBefore: good.notBefore.toISOString(),
        notAfter: good.notAfter.toISOString(),
        fingerprint256: goodCert.fingerprint256,
      },
    });
  });

  it('asks for a certificate when none was presented', () => {
    refuses(peerFacts(null, { authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT' }), 'MG_CLIENT_CERT_MISSING', /--ssl-cert\/--ssl-key.*ssl\.cert\/ssl\.key/);
  });

  it('reports an expired certificate with its notAfter and how to renew', () => {
    const iso = expired.notAfter.toISOString();
    const facts = peerFacts(expiredCert, { authorized: false, authorizationError: 'CERT_HAS_EXPIRED' });
    refuses(facts, 'MG_CLIENT_CERT_EXPIRED', new RegExp(`expired at ${iso}.*meshgate ca issue`));
  });

  it('re-checks expiry against the injected clock even when the chain verified', () => {
    refuses(peerFacts(expiredCert), 'MG_CLIENT_CERT_EXPIRED', /expired at/);
    refuses(peerFacts(goodCert), 'MG_CLIENT_CERT_EXPIRED', /expired at/, { ...TRUSTED, now: new Date(Date.now() + 2 * HOUR_MS) });
  });

  it('blames the CA when the chain expired but the leaf is in date', () => {
    refuses(peerFacts(goodCert, { authorized: false, authorizationError: 'CERT_HAS_EXPIRED' }), 'MG_CLIENT_CERT_EXPIRED', /CA certificate .* has expired/);
  });

  it('reports a certificate that is not valid yet', () => {
    refuses(peerFacts(futureCert, { authorized: false, authorizationError: 'CERT_NOT_YET_VALID' }), 'MG_CLIENT_CERT_NOT_YET_VALID', /not valid until/);
    refuses(peerFacts(goodCert), 'MG_CLIENT_CERT_NOT_YET_VALID', /not valid until/, { ...TRUSTED, now: new Date(Date.now() - HOUR_MS) });
  });

  const untrusted: Array<[string | null, RegExp]> = [
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /self-signed.*\(DEPTH_ZERO_SELF_SIGNED_CERT\)/],
    ['SELF_SIGNED_CERT_IN_CHAIN', /self-signed root that is not in the trust bundle/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /issuer is not in the trust bundle/],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', /issuing CA is not in the trust bundle/],
    ['CERT_SIGNATURE_FAILURE', /signature does not verify/],
    ['SOME_FUTURE_OPENSSL_CODE', /OpenSSL rejected its chain \(SOME_FUTURE_OPENSSL_CODE\)/],
    [null, /gave no reason/],
  ];
  for (const [code, message] of untrusted) {
    it(`explains chain failure ${String(code)} as MG_CLIENT_CERT_UNTRUSTED`, () => {
      refuses(peerFacts(goodCert, { authorized: false, authorizationError: code }), 'MG_CLIENT_CERT_UNTRUSTED', message);
    });
  }

  it('refuses a self-signed leaf as Node reports it', async () => {
    const leaf = await makeOddLeaf(null, { uris: ['spiffe://example.org/ns/a/sa/b'] });
    refuses(peerFacts(leaf.cert, { authorized: false, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'MG_CLIENT_CERT_UNTRUSTED', /self-signed/);
  });

  it('refuses a leaf that is a CA', async () => {
    const leaf = await makeOddLeaf(testCa, { uris: ['spiffe://example.org/ns/a/sa/b'], isCa: true });
    refuses(peerFacts(leaf.cert), 'MG_SPIFFE_ID_INVALID', /is a CA certificate/);
  });

  it('checks the chain before the leaf profile', async () => {
    const leaf = await makeOddLeaf(testCa, { uris: ['spiffe://example.org/ns/a/sa/b'], isCa: true });
    refuses(peerFacts(leaf.cert, { authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }), 'MG_CLIENT_CERT_UNTRUSTED', /issuing CA/);
  });

  it('requires exactly one URI SAN', async () => {
    const two = await makeOddLeaf(testCa, { uris: ['spiffe://example.org/ns/a/sa/b', 'spiffe://example.org/ns/a/sa/c'] });
    refuses(peerFacts(two.cert), 'MG_SPIFFE_ID_INVALID', /exactly one URI SAN.*carries 2/);
    const none = await makeOddLeaf(testCa, { dnsNames: ['client.example.org'] });
    refuses(peerFacts(none.cert), 'MG_SPIFFE_ID_INVALID', /carries 0/);
  });

  it('requires the URI SAN to be a valid SPIFFE ID', async () => {
    const https = await makeOddLeaf(testCa, { uris: ['https://example.org/ns/a/sa/b'] });
    refuses(peerFacts(https.cert), 'MG_SPIFFE_ID_INVALID', /URI SAN: .*must start with "spiffe:\/\/"/);
    const dotted = await makeOddLeaf(testCa, { uris: ['spiffe://example.org/ns/../sa/b'] });
    refuses(peerFacts(dotted.cert), 'MG_SPIFFE_ID_INVALID', /dot segments/);
  });

  it('refuses a trust domain that is not configured, naming both', () => {
    refuses(peerFacts(otherDomainCert), 'MG_TRUST_DOMAIN_UNTRUSTED', /"other\.org".*trusted: example\.org/);
    refuses(peerFacts(goodCert), 'MG_TRUST_DOMAIN_UNTRUSTED', /none are configured/, { trustDomains: [] });
    assert.equal(verifyTlsPeer(peerFacts(otherDomainCert), { trustDomains: ['example.org', 'other.org'] }).trustDomain, 'other.org');
  });
});
