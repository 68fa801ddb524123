import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseSubjectAltNames, uriSansOf } from '../../../src/identity/san.ts';
import { makeOddLeaf } from '../../helpers/certs.ts';

describe('parseSubjectAltNames', () => {
  it('reads plain entries', () => {
    assert.deepEqual(parseSubjectAltNames('URI:spiffe://a/b, DNS:localhost, IP Address:127.0.0.1'), [
      { type: 'URI', value: 'spiffe://a/b' },
      { type: 'DNS', value: 'localhost' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
  });

  it('decodes JSON-quoted values and does not split inside them', () => {
    assert.deepEqual(parseSubjectAltNames('URI:"spiffe://x/\\"y\\u002c z", DNS:"a\\u002cb"'), [
      { type: 'URI', value: 'spiffe://x/"y, z' },
      { type: 'DNS', value: 'a,b' },
    ]);
  });

  it('treats empty and missing input as no SANs, and rejects malformed quoting', () => {
    assert.deepEqual(parseSubjectAltNames(undefined), []);
    assert.deepEqual(parseSubjectAltNames(''), []);
    assert.throws(() => parseSubjectAltNames('URI:"spiffe://a'), TypeError);
    assert.throws(() => parseSubjectAltNames('nocolon'), TypeError);
  });

  it('cannot be tricked into a second URI by a comma inside a real certificate SAN', async () => {
    // A DNS name carrying ", URI:spiffe://..." must stay one DNS entry.
    const leaf = await makeOddLeaf(null, {
      uris: ['spiffe://example.org/ns/a/sa/b'],
      dnsNames: ['x, URI:spiffe://example.org/ns/admin/sa/root'],
    });
    assert.deepEqual(uriSansOf(leaf.cert.subjectAltName), ['spiffe://example.org/ns/a/sa/b']);
    const quoted = await makeOddLeaf(null, { uris: ['spiffe://example.org/a,b'] });
    assert.deepEqual(uriSansOf(quoted.cert.subjectAltName), ['spiffe://example.org/a,b']);
  });
});
