import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { parseSpiffeId, parseTrustDomain, principalOf, trustDomainId } from '../../../src/identity/spiffe.ts';

function rejects(uri: string, message: RegExp): void {
  assert.throws(
    () => parseSpiffeId(uri),
    (error: unknown) => isMeshgateError(error) && error.code === 'MG_SPIFFE_ID_INVALID' && message.test(error.message),
    `expected ${JSON.stringify(uri)} to be rejected with ${message}`,
  );
}

describe('parseSpiffeId', () => {
  const valid: Array<[string, string, string, string | null, string | null]> = [
    ['spiffe://example.org/ns/shop/sa/orders', 'example.org', 'ns/shop/sa/orders', 'shop', 'orders'],
    ['spiffe://cluster.local/ns/default/sa/default', 'cluster.local', 'ns/default/sa/default', 'default', 'default'],
    ['spiffe://example.org', 'example.org', '', null, null],
    ['spiffe://example.org/payments/mysql', 'example.org', 'payments/mysql', null, null],
    ['spiffe://example.org/ns/shop/sa/orders/extra', 'example.org', 'ns/shop/sa/orders/extra', null, null],
    ['spiffe://example.org/NS/shop/SA/orders', 'example.org', 'NS/shop/SA/orders', null, null],
    ['spiffe://a_b-c.d9/x.y/A-Z_0', 'a_b-c.d9', 'x.y/A-Z_0', null, null],
    ['spiffe://td/...', 'td', '...', null, null],
  ];
  for (const [uri, trustDomain, path, namespace, serviceAccount] of valid) {
    it(`accepts ${uri}`, () => {
      assert.deepEqual(parseSpiffeId(uri), { uri, trustDomain, path, namespace, serviceAccount });
    });
  }

  const invalid: Array<[string, RegExp]> = [
    ['', /empty/],
    ['example.org/ns/a', /must start with "spiffe:\/\/"/],
    ['https://example.org/a', /must start with/],
    ['SPIFFE://example.org/a', /lower-case 'spiffe'/],
    ['spiffe:/example.org/a', /must start with/],
    ['spiffe://', /trust domain is empty/],
    ['spiffe:///path', /trust domain is empty/],
    ['spiffe://Example.org/a', /lower case/],
    ['spiffe://exa mple.org/a', /only a-z/],
    ['spiffe://exämple.org/a', /only a-z/],
    ['spiffe://example.org:8443/a', /port/],
    ['spiffe://user@example.org/a', /userinfo/],
    ['spiffe://example.org/a?x=1', /query/],
    ['spiffe://example.org/a#frag', /fragment/],
    ['spiffe://example.org/', /must not end with "\/"/],
    ['spiffe://example.org/a/', /must not end with "\/"/],
    ['spiffe://example.org//a', /segment 1 is empty/],
    ['spiffe://example.org/a/./b', /dot segments/],
    ['spiffe://example.org/a/../b', /dot segments/],
    ['spiffe://example.org/a%2Fb', /percent-encoding/],
    ['spiffe://example.org/a b', /only A-Z/],
    ['spiffe://example.org/a:b', /only A-Z/],
    ['spiffe://example.org/ns/ü/sa/x', /only A-Z/],
    [`spiffe://${'a'.repeat(256)}/x`, /longer than 255 bytes/],
    [`spiffe://example.org/${'a'.repeat(2048)}`, /longer than 2048 bytes/],
  ];
  for (const [uri, message] of invalid) {
    it(`rejects ${JSON.stringify(uri.length > 60 ? uri.slice(0, 60) + '…' : uri)}`, () => rejects(uri, message));
  }

  it('accepts exactly 2048 bytes and bounds the echoed input in messages', () => {
    const prefix = 'spiffe://example.org/';
    const max = prefix + 'a'.repeat(2048 - prefix.length);
    assert.equal(parseSpiffeId(max).uri.length, 2048);
    assert.throws(
      () => parseSpiffeId(max + 'a'),
      (error: unknown) => isMeshgateError(error) && error.message.length < 200,
    );
  });

  it('throws TypeError for a non-string (a caller bug, not bad input)', () => {
    assert.throws(() => parseSpiffeId(42 as unknown as string), TypeError);
  });
});

describe('principalOf, parseTrustDomain, trustDomainId', () => {
  it('renders the Istio principal', () => {
    assert.equal(principalOf(parseSpiffeId('spiffe://cluster.local/ns/a/sa/b')), 'cluster.local/ns/a/sa/b');
  });
  it('validates bare trust domains', () => {
    assert.equal(parseTrustDomain('example.org'), 'example.org');
    assert.equal(trustDomainId('example.org'), 'spiffe://example.org');
    for (const bad of ['', 'Example.org', 'spiffe://example.org', 'a/b', 'a:1']) {
      assert.throws(() => parseTrustDomain(bad), (e: unknown) => isMeshgateError(e) && e.code === 'MG_SPIFFE_ID_INVALID');
    }
    assert.throws(() => parseTrustDomain('spiffe://example.org'), /without the scheme/);
  });
});

describe('parseSpiffeId properties', () => {
  it('throws nothing but MG_SPIFFE_ID_INVALID on arbitrary strings', () => {
    const anyText = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.string({ maxLength: 80 }).map((s) => `spiffe://${s}`),
      fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => `spiffe://example.org/${s}`),
    );
    fc.assert(
      fc.property(anyText, (text) => {
        try {
          const id = parseSpiffeId(text);
          assert.equal(id.uri, text);
        } catch (error) {
          assert.ok(isMeshgateError(error) && error.code === 'MG_SPIFFE_ID_INVALID', String(error));
        }
      }),
      { numRuns: 2000 },
    );
  });

  const trustDomainArb = fc.stringMatching(/^[a-z0-9._-]{1,40}$/);
  const segmentArb = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..');

  it('round-trips every valid generated ID', () => {
    fc.assert(
      fc.property(trustDomainArb, fc.array(segmentArb, { maxLength: 6 }), (td, segments) => {
        const uri = `spiffe://${td}${segments.map((s) => `/${s}`).join('')}`;
        const id = parseSpiffeId(uri);
        assert.equal(id.uri, uri);
        assert.equal(id.trustDomain, td);
        assert.equal(id.path, segments.join('/'));
        assert.equal(principalOf(id), uri.slice('spiffe://'.length));
      }),
    );
  });

  it('extracts namespace and service account from every Istio-shaped ID', () => {
    fc.assert(
      fc.property(trustDomainArb, segmentArb, segmentArb, (td, ns, sa) => {
        const id = parseSpiffeId(`spiffe://${td}/ns/${ns}/sa/${sa}`);
        assert.equal(id.namespace, ns);
        assert.equal(id.serviceAccount, sa);
      }),
    );
  });
});
