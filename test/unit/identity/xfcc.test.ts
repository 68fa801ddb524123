import { isIP } from 'node:net';
import { before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { isMeshgateError, type ErrorCode } from '../../../src/errors/index.ts';
import { identityFromXfcc, MAX_XFCC_LENGTH, parseXfcc, type XfccTrustOptions } from '../../../src/identity/xfcc.ts';
import { makeOddLeaf, makeTestCa, type OddLeaf } from '../../helpers/certs.ts';

const OPTIONS: XfccTrustOptions = { trustedHops: ['127.0.0.6', '127.0.0.1', '::1', '10.20.0.0/16'], trustDomains: ['cluster.local'] };
const SIDECAR = { remoteAddress: '127.0.0.6' };
const HASH = '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688';
const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
/** What Istio's inbound sidecar sends (APPEND_FORWARD, Subject/URI/DNS). */
const ISTIO = `By=spiffe://cluster.local/ns/db/sa/meshgate;Hash=${HASH};Subject="";URI=${ORDERS}`;

function refuses(header: string, code: ErrorCode, message: RegExp): void {
  assert.throws(
    () => identityFromXfcc(header, SIDECAR, OPTIONS),
    (error: unknown) => isMeshgateError(error) && error.code === code && message.test(error.message),
  );
}

describe('parseXfcc', () => {
  it("parses Envoy's documented examples", () => {
    assert.deepEqual(parseXfcc('By=http://frontend.lyft.com;Hash=abc;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com'), [
      { pairs: [['by', 'http://frontend.lyft.com'], ['hash', 'abc'], ['subject', '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client'], ['uri', 'http://testclient.lyft.com']] },
    ]);
    const two = parseXfcc('By=http://frontend.lyft.com;URI=http://testclient.lyft.com,By=http://backend.lyft.com;URI=http://frontend.lyft.com');
    assert.equal(two.length, 2);
    assert.deepEqual(two[1]?.pairs, [['by', 'http://backend.lyft.com'], ['uri', 'http://frontend.lyft.com']]);
    assert.deepEqual(parseXfcc('URI=http://a;DNS=lyft.com;DNS=www.lyft.com')[0]?.pairs.filter(([k]) => k === 'dns').length, 2);
  });

  it('reads quoted values with escapes, case-insensitive keys, and comma-joined repeated headers', () => {
    assert.deepEqual(parseXfcc('subject="CN=a, O=\\"b\\"; c=d \\\\ e";uRi=spiffe://x/y')[0]?.pairs, [
      ['subject', 'CN=a, O="b"; c=d \\ e'],
      ['uri', 'spiffe://x/y'],
    ]);
    assert.deepEqual(parseXfcc('  URI=a ,\tURI=b  ').map((e) => e.pairs), [[['uri', 'a']], [['uri', 'b']]]);
    assert.deepEqual(parseXfcc('Subject="";URI=')[0]?.pairs, [['subject', ''], ['uri', '']]);
  });

  it('refuses what Envoy never sends, saying where', () => {
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['URI', /no "=" after the key "uri" at offset 3/],
      ['=x', /no key at offset 0/],
      ['URI=a;', /no key at offset 6/],
      ['URI=a,', /ends with ","/],
      ['URI=a;;By=b', /no key at offset 6/],
      ['Subject="abc', /quoted value opened at offset 8 that never closes/],
      ['Subject="abc\\', /never closes/],
      ['URI=a b', /"b" at offset 6 where ";" or "," belongs/],
      ['URI=a"b', /at offset 5 where/],
      ['Subject="a\u0000"', /control character/],
      ['URI=a=b', /"=" at offset 5/],
    ];
    for (const [header, message] of cases) {
      assert.throws(() => parseXfcc(header), (e: unknown) => isMeshgateError(e) && e.code === 'MG_XFCC_MALFORMED' && message.test(e.message), header);
    }
    assert.throws(() => parseXfcc(`URI=${'a'.repeat(MAX_XFCC_LENGTH)}`), /longer than/);
  });
});

describe('identityFromXfcc', () => {
  let leaf: OddLeaf;
  before(async () => {
    leaf = await makeOddLeaf(await makeTestCa('cluster.local'), { uris: [ORDERS] });
  });

  it("takes the identity from a trusted sidecar's element", () => {
    const result = identityFromXfcc(ISTIO, SIDECAR, OPTIONS);
    assert.equal(result.stripped, false);
    assert.match(result.reason, /trusted hop 127\.0\.0\.6: spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders \(element 1 of 1\)/);
    assert.deepEqual(result.identity, {
      spiffeId: ORDERS,
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'orders',
      principal: 'cluster.local/ns/shop/sa/orders',
      authMethod: 'xfcc',
      certificate: { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: HASH.toUpperCase().match(/../g)?.join(':') },
    });
  });

  it('believes only the last element: earlier ones came from the caller', () => {
    const spoofed = `By=x;URI=spiffe://cluster.local/ns/kube-system/sa/admin,${ISTIO}`;
    assert.equal(identityFromXfcc(spoofed, SIDECAR, OPTIONS).identity?.spiffeId, ORDERS);
    assert.equal(identityFromXfcc(`${ISTIO}, By=x;URI=spiffe://cluster.local/ns/a/sa/b`, SIDECAR, OPTIONS).identity?.serviceAccount, 'b');
  });

  it('accepts configured hops as addresses, CIDRs and IPv4-mapped IPv6', () => {
    for (const remoteAddress of ['127.0.0.1', '::ffff:127.0.0.6', '::1', '10.20.3.4', '::FFFF:10.20.255.255']) {
      assert.ok(identityFromXfcc(ISTIO, { remoteAddress }, OPTIONS).identity, remoteAddress);
    }
  });

  it('strips and ignores the header from any other peer, even a malformed one', () => {
    for (const remoteAddress of ['10.1.2.3', '127.0.0.7', '::2', '', 'not-an-ip', '10.21.0.1']) {
      for (const header of [ISTIO, 'garbage"', 'URI=spiffe://cluster.local/ns/a/sa/b;URI=x']) {
        const result = identityFromXfcc(header, { remoteAddress }, OPTIONS);
        assert.equal(result.identity, null);
        assert.equal(result.stripped, true);
        assert.match(result.reason, /not a trusted hop \(trusted: 127\.0\.0\.6, .*\); the header was stripped and ignored/);
      }
    }
    const none = identityFromXfcc(ISTIO, { remoteAddress: '127.0.0.6' }, { ...OPTIONS, trustedHops: [] });
    assert.match(none.reason, /none are configured/);
  });

  it('reports no header as no identity, not as stripped', () => {
    for (const header of [undefined, '', '  ']) {
      assert.deepEqual(identityFromXfcc(header, { remoteAddress: '10.1.2.3' }, OPTIONS), { identity: null, stripped: false, reason: 'no x-forwarded-client-cert header' });
    }
  });

  it('refuses an element without exactly one valid SPIFFE ID in a trusted domain', () => {
    refuses(`By=a;Hash=${HASH};URI=${ORDERS};URI=spiffe://cluster.local/ns/x/sa/y`, 'MG_SPIFFE_ID_INVALID', /exactly one URI .* carries 2/);
    refuses(`By=a;Hash=${HASH};DNS=orders.shop`, 'MG_SPIFFE_ID_INVALID', /carries 0/);
    refuses('URI=https://cluster.local/ns/a/sa/b', 'MG_SPIFFE_ID_INVALID', /x-forwarded-client-cert URI: .*must start with "spiffe:\/\/"/);
    refuses('URI=spiffe://other.org/ns/a/sa/b', 'MG_TRUST_DOMAIN_UNTRUSTED', /"other\.org" .* \(trusted: cluster\.local\)/);
    refuses('URI=spiffe://cluster.local/ns/a/sa/b;Hash=xyz', 'MG_XFCC_MALFORMED', /Hash that is not a hex SHA-256/);
    refuses('URI="spiffe://cluster.local/ns/a', 'MG_XFCC_MALFORMED', /never closes/);
  });

  it('uses a forwarded Cert, checking it against Hash and URI', () => {
    const cert = encodeURIComponent(leaf.certPem);
    const hash = createHash('sha256').update(leaf.cert.raw).digest('hex');
    const result = identityFromXfcc(`Hash=${hash};Cert="${cert}";URI=${ORDERS}`, SIDECAR, OPTIONS);
    assert.deepEqual(result.identity?.certificate, {
      serialNumber: leaf.cert.serialNumber,
      notBefore: new Date(leaf.cert.validFrom).toISOString(),
      notAfter: new Date(leaf.cert.validTo).toISOString(),
      fingerprint256: leaf.cert.fingerprint256,
    });
    refuses(`Hash=${HASH};Cert="${cert}";URI=${ORDERS}`, 'MG_XFCC_MALFORMED', /Hash that does not match its Cert/);
    refuses(`Cert="${cert}";URI=spiffe://cluster.local/ns/shop/sa/other`, 'MG_XFCC_MALFORMED', /differs from the URI SAN/);
    refuses(`Cert=%E0%A4%A;URI=${ORDERS}`, 'MG_XFCC_MALFORMED', /not a URL-encoded PEM/);
  });

  it('refuses a trusted hop that is not an address or CIDR', () => {
    for (const hop of ['localhost', '10.0.0.0/33', '::1/129', '10.0.0.0/8/1', '10.0.0.0/x', '']) {
      assert.throws(
        () => identityFromXfcc(ISTIO, SIDECAR, { ...OPTIONS, trustedHops: [hop] }),
        (e: unknown) => isMeshgateError(e) && e.code === 'MG_CONFIG_INVALID',
        hop,
      );
    }
  });
});

describe('identityFromXfcc properties', () => {
  const keyArb = fc.constantFrom('By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI', 'uri', 'DNS', 'x');
  const valueArb = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constantFrom(ORDERS, 'spiffe://evil.org/ns/a/sa/b', HASH, 'spiffe://cluster.local', ''),
  );
  const encode = (value: string, quote: boolean): string => (quote ? `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"` : value);
  const elementArb = fc.array(fc.tuple(keyArb, valueArb, fc.boolean()), { minLength: 1, maxLength: 5 });
  const structured = fc
    .array(elementArb, { minLength: 1, maxLength: 4 })
    .map((elements) => elements.map((pairs) => pairs.map(([k, v, q]) => `${k}=${encode(v, q)}`).join(';')).join(','));
  const anyHeader = fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), structured);

  it('throws nothing but MeshgateError from a trusted hop', () => {
    fc.assert(
      fc.property(anyHeader, (header) => {
        try {
          const result = identityFromXfcc(header, SIDECAR, OPTIONS);
          if (result.identity !== null) assert.equal(result.identity.trustDomain, 'cluster.local');
        } catch (error) {
          if (!isMeshgateError(error)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never yields an identity, nor throws, for a header from an untrusted hop', () => {
    // IPv6 has many spellings of one address (0::1 is ::1): compare the canonical form, and
    // leave out IPv4-mapped ones, which name IPv4 hops in IPv6 clothing.
    const canonical = (a: string) => (isIP(a) === 6 ? new URL(`http://[${a}]/`).hostname.slice(1, -1) : a);
    const untrusted = fc
      .oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 }))
      .filter((a) => !/^(127\.0\.0\.[16]|::1$|10\.20\.|::ffff:)/i.test(canonical(a)));
    fc.assert(
      fc.property(anyHeader, untrusted, (header, remoteAddress) => {
        const result = identityFromXfcc(header, { remoteAddress }, OPTIONS);
        assert.equal(result.identity, null);
        assert.equal(result.stripped, header.trim() !== '');
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips quoted values', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(keyArb, fc.string({ maxLength: 30 }).filter((s) => !/[\u0000-\u0008\u000a-\u001f\u007f]/.test(s))), { minLength: 1, maxLength: 5 }), (pairs) => {
        const parsed = parseXfcc(pairs.map(([k, v]) => `${k}=${encode(v, true)}`).join(';'));
        assert.deepEqual(parsed[0]?.pairs, pairs.map(([k, v]) => [k.toLowerCase(), v]));
      }),
    );
  });
});
