import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { webcrypto, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMeshgateError } from '../../../../src/errors/index.ts';
import { initCa } from '../../../../src/identity/ca.ts';
import { generateKeyAndCsr, verifyCsr } from '../../../../src/identity/signer/csr.ts';
import { signSvidForKey } from '../../../../src/identity/signer/sign.ts';
import { generateKeyPair, SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../../../src/identity/x509.ts';
import { makeTempDir } from '../../../helpers/certs.ts';

function csrPem(der: ArrayBuffer | Uint8Array): string {
  return `${x509.PemConverter.encode(der instanceof Uint8Array ? Uint8Array.from(der).buffer : der, 'CERTIFICATE REQUEST')}\n`;
}

async function csrFor(keys: CryptoKeyPair, signingAlgorithm: object = SIGNING_ALGORITHM, extra: Partial<x509.Pkcs10CertificateRequestCreateParams> = {}) {
  return x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: signingAlgorithm as typeof SIGNING_ALGORITHM, ...extra });
}

function refusedWith(pattern: RegExp) {
  return (error: unknown) => isMeshgateError(error) && error.code === 'MG_CSR_INVALID' && pattern.test(error.message);
}

describe('verifyCsr', () => {
  it('accepts the CSR the agent builds and returns its key', async () => {
    const { csrPem: pem } = await generateKeyAndCsr();
    const verified = await verifyCsr(pem);
    assert.deepEqual(verified.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
  });

  it('refuses a CSR whose signature was altered', async () => {
    const csr = await csrFor(await generateKeyPair());
    const der = new Uint8Array(csr.rawData);
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0x01;
    await assert.rejects(verifyCsr(csrPem(der)), refusedWith(/signature (does not verify|cannot be checked)/));
  });

  it('refuses a CSR whose key was swapped after signing', async () => {
    // The signed body names one key, the signature comes from another: possession not proven.
    const a = await csrFor(await generateKeyPair());
    const b = await csrFor(await generateKeyPair());
    const aDer = new Uint8Array(a.rawData);
    const aKey = new Uint8Array(a.publicKey.rawData);
    const bKey = new Uint8Array(b.publicKey.rawData);
    const at = Buffer.from(aDer).indexOf(Buffer.from(aKey));
    assert.ok(at > 0);
    aDer.set(bKey, at);
    await assert.rejects(verifyCsr(csrPem(aDer)), refusedWith(/does not verify with its own key/));
  });

  it('refuses keys other than ECDSA P-256', async () => {
    const rsa = (await webcrypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair;
    await assert.rejects(verifyCsr((await csrFor(rsa, { name: 'RSASSA-PKCS1-v1_5' })).toString('pem')), refusedWith(/key is RSASSA-PKCS1-v1_5, not ECDSA P-256/));
    const p384 = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    await assert.rejects(verifyCsr((await csrFor(p384, { name: 'ECDSA', hash: 'SHA-384' })).toString('pem')), refusedWith(/ECDSA P-384, not ECDSA P-256/));
  });

  it('refuses what is not one PEM CSR', async () => {
    const { csrPem: pem } = await generateKeyAndCsr();
    await assert.rejects(verifyCsr(undefined), refusedWith(/no csr/));
    await assert.rejects(verifyCsr(42), refusedWith(/no csr/));
    await assert.rejects(verifyCsr('hello'), refusedWith(/not one PEM block/));
    await assert.rejects(verifyCsr(pem + pem), refusedWith(/not one PEM block/));
    await assert.rejects(verifyCsr(pem.replace(/REQUEST/g, 'REQUESTX')), refusedWith(/not one PEM block/));
    await assert.rejects(verifyCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), refusedWith(/does not decode/));
    await assert.rejects(verifyCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(20_000)}\n-----END CERTIFICATE REQUEST-----\n`), refusedWith(/longer than/));
  });
});

describe('signSvidForKey', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let caDir: string;
  before(async () => {
    tmp = await makeTempDir();
    caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org' });
  });
  after(() => tmp.cleanup());

  it("ignores the subject and SANs a CSR asks for: the caller's SPIFFE ID only", async () => {
    const keys = await generateKeyPair();
    const greedy = await csrFor(keys, SIGNING_ALGORITHM, {
      name: 'CN=admin, O=meshgate',
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/ns/kube-system/sa/admin' }, { type: 'dns', value: 'meshgate' }])],
    });
    const { publicKey } = await verifyCsr(greedy.toString('pem'));
    const signed = await signSvidForKey({ caDir, publicKey, spiffeId: 'spiffe://example.org/ns/shop/sa/orders', ttlSeconds: 600 });
    const cert = new X509Certificate(signed.certificatePem);
    assert.ok(!cert.subject, 'empty subject (Node reports it as undefined)');
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/shop/sa/orders');
    assert.equal(cert.ca, false);
    const parsed = new x509.X509Certificate(signed.certificatePem);
    assert.equal(parsed.getExtension(x509.SubjectAlternativeNameExtension)?.critical, true);
    assert.equal(parsed.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature);
    assert.deepEqual([...(parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    assert.ok(cert.checkIssued(new X509Certificate(await readFile(join(caDir, 'ca.crt')))));
    assert.equal(signed.serialNumber, cert.serialNumber);
    assert.equal(signed.bundlePem, await readFile(join(caDir, 'bundle.pem'), 'utf8'));
    // notBefore is backdated for skew; notAfter is the requested lifetime from now.
    assert.ok(Math.abs(new Date(cert.validTo).getTime() - Date.now() - 600_000) < 5000);
    const metadata = JSON.parse(await readFile(join(caDir, 'ca.json'), 'utf8')) as { roots: { issuedUntil: string | null }[] };
    assert.equal(metadata.roots[0]?.issuedUntil, signed.notAfter.toISOString());
  });

  it('refuses an ID outside the trust domain, or the trust domain itself', async () => {
    const { publicKey } = await verifyCsr((await generateKeyAndCsr()).csrPem);
    await assert.rejects(signSvidForKey({ caDir, publicKey, spiffeId: 'spiffe://other.org/ns/a/sa/b' }), { code: 'MG_TRUST_DOMAIN_UNTRUSTED' });
    await assert.rejects(signSvidForKey({ caDir, publicKey, spiffeId: 'spiffe://example.org' }), { code: 'MG_SPIFFE_ID_INVALID' });
  });

  it('discards the certificate when underLock throws', async () => {
    const { publicKey } = await verifyCsr((await generateKeyAndCsr()).csrPem);
    const spent = new Error('token already used');
    await assert.rejects(signSvidForKey({ caDir, publicKey, spiffeId: 'spiffe://example.org/a', underLock: () => Promise.reject(spent) }), spent);
  });
});
