import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { initCa, issueServerCert, issueSvid, loadCa } from '../../../src/identity/ca.ts';
import { x509 } from '../../../src/identity/x509.ts';
import { DAY_MS, HOUR_MS, makeTempDir, readCert } from '../../helpers/certs.ts';

function isCode(code: ErrorCode, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isMeshgateError(error), String(error));
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('built-in CA', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let caDir: string;
  const created = new Date(Date.now() - DAY_MS);

  before(async () => {
    ({ dir: root, cleanup } = await makeTempDir());
    caDir = join(root, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org', ttlDays: 30, now: created });
  });
  after(() => cleanup());

  it('writes root, key (0600), bundle and metadata', async () => {
    assert.equal(await mode(join(caDir, 'ca.key')), 0o600);
    const certPem = await readFile(join(caDir, 'ca.crt'), 'utf8');
    assert.equal(await readFile(join(caDir, 'bundle.pem'), 'utf8'), certPem);
    assert.match(await readFile(join(caDir, 'ca.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const meta = JSON.parse(await readFile(join(caDir, 'ca.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(meta['trustDomain'], 'example.org');
    assert.equal(meta['created'], created.toISOString());

    const cert = await readCert(join(caDir, 'ca.crt'));
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, 'O=meshgate\nCN=meshgate CA example.org');
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org');
    assert.ok(cert.checkIssued(cert));
    const parsed = new x509.X509Certificate(certPem);
    const bc = parsed.getExtension(x509.BasicConstraintsExtension);
    assert.ok(bc?.critical && bc.ca);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    assert.ok(ku?.critical);
    assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(parsed.notAfter.getTime() - parsed.notBefore.getTime(), 30 * DAY_MS + 60_000);
  });

  it('refuses to replace a CA without force, and replaces it with force', async () => {
    await assert.rejects(initCa({ dir: caDir, trustDomain: 'example.org' }), isCode('MG_CA_EXISTS', /--force/));
    const dir = join(root, 'forced');
    await initCa({ dir, trustDomain: 'example.org' });
    const before = await readFile(join(dir, 'ca.crt'), 'utf8');
    await initCa({ dir, trustDomain: 'example.net', force: true });
    assert.notEqual(await readFile(join(dir, 'ca.crt'), 'utf8'), before);
    assert.equal((await loadCa(dir)).metadata.trustDomain, 'example.net');
  });

  it('rejects a bad trust domain as a usage error', async () => {
    await assert.rejects(initCa({ dir: join(root, 'bad'), trustDomain: 'Example.org' }), isCode('MG_USAGE', /lower case/));
  });

  it('says how to create a CA when there is none', async () => {
    const dir = join(root, 'nothing-here');
    await assert.rejects(
      issueSvid({ caDir: dir, spiffeId: 'spiffe://example.org/a', outDir: root }),
      isCode('MG_CA_MISSING', new RegExp(`meshgate ca init --dir ${dir} --trust-domain`)),
    );
  });

  it('issues an X.509-SVID with the SPIFFE profile', async () => {
    const now = new Date(Date.now() - HOUR_MS);
    const out = join(root, 'svid');
    const issued = await issueSvid({ caDir, spiffeId: 'spiffe://example.org/ns/shop/sa/orders', ttlSeconds: 7200, outDir: out, now });
    assert.equal(issued.certPath, join(out, 'svid.crt'));
    assert.equal(await mode(issued.keyPath), 0o600);
    assert.equal(await readFile(issued.bundlePath, 'utf8'), await readFile(join(caDir, 'bundle.pem'), 'utf8'));

    const cert = await readCert(issued.certPath);
    const caCert = await readCert(join(caDir, 'ca.crt'));
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.ca, false);
    assert.ok(!cert.subject, 'subject should be empty');
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/shop/sa/orders');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.serialNumber, issued.serialNumber);
    assert.match(cert.serialNumber, /^[4-7][0-9A-F]{31}$/);
    assert.equal(new Date(cert.validFrom).getTime(), Math.floor(now.getTime() / 1000) * 1000 - 60_000);
    assert.equal(issued.notAfter.getTime(), Math.floor(now.getTime() / 1000) * 1000 + 7_200_000);

    const parsed = new x509.X509Certificate(await readFile(issued.certPath, 'utf8'));
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
    assert.ok(san?.critical, 'SAN must be critical with an empty subject');
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    assert.ok(ku?.critical);
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    const bc = parsed.getExtension(x509.BasicConstraintsExtension);
    assert.equal(bc?.ca, false);
    const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
    const caSki = new x509.X509Certificate(await readFile(join(caDir, 'ca.crt'), 'utf8')).getExtension(x509.SubjectKeyIdentifierExtension);
    assert.equal(aki?.keyId, caSki?.keyId);
    assert.ok(parsed.getExtension(x509.SubjectKeyIdentifierExtension));
  });

  it('gives every certificate a fresh key and serial', async () => {
    const out = join(root, 'twice');
    const a = await issueSvid({ caDir, spiffeId: 'spiffe://example.org/a', outDir: out, name: 'a' });
    const b = await issueSvid({ caDir, spiffeId: 'spiffe://example.org/a', outDir: out, name: 'b' });
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.notEqual(await readFile(a.keyPath, 'utf8'), await readFile(b.keyPath, 'utf8'));
  });

  it('refuses IDs outside the CA trust domain, or without a path', async () => {
    await assert.rejects(
      issueSvid({ caDir, spiffeId: 'spiffe://other.org/ns/a/sa/b', outDir: root }),
      isCode('MG_USAGE', /trust domain "other\.org".*signs for "example\.org"/),
    );
    await assert.rejects(issueSvid({ caDir, spiffeId: 'spiffe://example.org', outDir: root }), isCode('MG_USAGE', /needs a path/));
    await assert.rejects(issueSvid({ caDir, spiffeId: 'example.org/a', outDir: root }), isCode('MG_USAGE', /--spiffe-id/));
  });

  it('refuses file names that escape the output directory or hit the CA files', async () => {
    await assert.rejects(issueSvid({ caDir, spiffeId: 'spiffe://example.org/a', outDir: root, name: '../x' }), isCode('MG_USAGE', /plain file name/));
    await assert.rejects(issueSvid({ caDir, spiffeId: 'spiffe://example.org/a', outDir: caDir, name: 'ca' }), isCode('MG_USAGE', /overwrite the CA/));
  });

  it('never issues past the CA expiry, and not from an expired CA', async () => {
    const capped = await issueSvid({ caDir, spiffeId: 'spiffe://example.org/a', ttlSeconds: 90 * 86_400, outDir: join(root, 'cap') });
    const caCert = await readCert(join(caDir, 'ca.crt'));
    assert.equal(capped.clampedToCa, true);
    assert.equal(capped.notAfter.getTime(), new Date(caCert.validTo).getTime());
    await assert.rejects(
      issueSvid({ caDir, spiffeId: 'spiffe://example.org/a', outDir: root, now: new Date(Date.now() + 60 * DAY_MS) }),
      isCode('MG_CONFIG_INVALID', /valid from .* to .*ca init --force/),
    );
  });

  it('issues a server certificate with default and explicit SANs', async () => {
    const out = join(root, 'server');
    const issued = await issueServerCert({ caDir, outDir: out });
    assert.equal(issued.certPath, join(out, 'server.crt'));
    const cert = await readCert(issued.certPath);
    assert.equal(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('::1'), '::1');
    assert.equal(cert.ca, false);
    assert.ok(new Date(cert.validTo).getTime() <= new Date((await readCert(join(caDir, 'ca.crt'))).validTo).getTime());

    const named = await issueServerCert({
      caDir, outDir: out, name: 'db', dnsNames: ['db.example.org'], spiffeId: 'spiffe://example.org/ns/meshgate/sa/meshgate', ttlSeconds: 3600,
    });
    const namedCert = await readCert(named.certPath);
    assert.equal(namedCert.subjectAltName, 'DNS:db.example.org, URI:spiffe://example.org/ns/meshgate/sa/meshgate');
    assert.equal(namedCert.subject, 'O=meshgate\nCN=db.example.org');
  });

  it('rejects bad server SANs', async () => {
    await assert.rejects(issueServerCert({ caDir, outDir: root, ipAddresses: ['300.1.1.1'] }), isCode('MG_USAGE', /--ip/));
    await assert.rejects(issueServerCert({ caDir, outDir: root, dnsNames: ['bad name'] }), isCode('MG_USAGE', /--dns/));
    await assert.rejects(issueServerCert({ caDir, outDir: root, dnsNames: [] }), isCode('MG_USAGE', /at least one/));
  });
});

describe('PEM files the CA writes', () => {
  it('end in a newline, so `cat a.pem >> bundle.pem` makes a bundle OpenSSL reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-pem-'));
    try {
      await initCa({ dir, trustDomain: 'pem.example' });
      const svid = await issueSvid({ caDir: dir, spiffeId: 'spiffe://pem.example/ns/a/sa/b', outDir: dir, name: 'b' });
      for (const file of [join(dir, 'ca.crt'), join(dir, 'bundle.pem'), join(dir, 'ca.key'), svid.certPath, svid.keyPath]) {
        assert.ok((await readFile(file, 'utf8')).endsWith('-----\n'), `${file} ends without a newline`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
