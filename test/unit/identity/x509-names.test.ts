/**
 * A certificate's subject and issuer as OpenSSL's one-line form (`/O=meshgate/CN=x`), which
 * MariaDB compares, byte for byte, with an account's REQUIRE SUBJECT and ISSUER. Names whose
 * one-line form is ambiguous or differs from what node reports are refused, not guessed.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { initCa, issueServerCert, issueSvid } from '../../../src/identity/ca.ts';
import { onelineName } from '../../../src/identity/x509-names.ts';
import { makeTempDir } from '../../helpers/certs.ts';

describe('onelineName', () => {
  it('joins the RDNs in certificate order, each as SHORTNAME=value', () => {
    assert.equal(onelineName('O=meshgate\nCN=meshgate-upstream'), '/O=meshgate/CN=meshgate-upstream');
    assert.equal(onelineName('C=DE\nST=Berlin\nO=Shop GmbH\nCN=meshgate CA cluster.local'), '/C=DE/ST=Berlin/O=Shop GmbH/CN=meshgate CA cluster.local');
  });

  it('refuses what the one-line form cannot say plainly: empty, escaped characters, a slash, several values in one RDN, non-ASCII', () => {
    for (const name of ['', 'CN=a\\, b', 'O=a/b', 'CN=a + OU=b', 'CN=caf\u00e9', 'CN=\\C3\\A9']) {
      assert.equal(onelineName(name), null, JSON.stringify(name));
    }
  });

  it('reads certificates of meshgate’s own CA: the upstream certificate and its issuer, and an SVID’s empty subject', async () => {
    const tmp = await makeTempDir('meshgate-x509-names-');
    try {
      const caDir = join(tmp.dir, 'ca');
      await initCa({ dir: caDir, trustDomain: 'cluster.local' });
      const upstream = await issueServerCert({ caDir, outDir: tmp.dir, dnsNames: ['meshgate-upstream'], name: 'upstream' });
      const svid = await issueSvid({ caDir, spiffeId: 'spiffe://cluster.local/ns/a/sa/b', outDir: tmp.dir });
      const cert = new X509Certificate(await readFile(upstream.certPath));
      assert.equal(onelineName(cert.subject), '/O=meshgate/CN=meshgate-upstream');
      assert.equal(onelineName(cert.issuer), '/O=meshgate/CN=meshgate CA cluster.local');
      assert.equal(onelineName(new X509Certificate(await readFile(svid.certPath)).subject), null);
    } finally {
      await tmp.cleanup();
    }
  });
});
