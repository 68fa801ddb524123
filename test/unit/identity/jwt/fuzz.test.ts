import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isMeshgateError } from '../../../../src/errors/index.ts';
import { createTokenVerifier, type TokenVerifier } from '../../../../src/identity/jwt/index.ts';
import { makeTempDir } from '../../../helpers/certs.ts';
import { b64url, makeSigningKey, signToken, type SigningKey } from '../../../helpers/jwks-server.ts';

const ISSUER = 'https://issuer.example';

/** Anything but MG_INTERNAL: a bug would surface as that. */
async function refusedCleanly(verifier: TokenVerifier, token: string): Promise<void> {
  try {
    await verifier.verify(token);
  } catch (error) {
    assert.ok(isMeshgateError(error), `not a MeshgateError for ${JSON.stringify(token.slice(0, 100))}: ${String(error)}`);
    assert.notEqual(error.code, 'MG_INTERNAL', `${error.message} (cause: ${String(error.cause)})`);
    return;
  }
}

describe('TokenVerifier.verify on untrusted input (property)', () => {
  let verifier: TokenVerifier;
  let key: SigningKey;
  let cleanup: () => Promise<void>;

  before(async () => {
    const tmp = await makeTempDir('meshgate-jwt-fuzz-');
    cleanup = tmp.cleanup;
    key = await makeSigningKey('ES256', 'k1');
    await writeFile(`${tmp.dir}/jwks.json`, JSON.stringify({ keys: [key.jwk] }));
    verifier = await createTokenVerifier({
      issuers: ['kubernetes', 'github-actions', 'jwt-svid', 'oidc'].map((kind, i) => ({
        issuer: i === 0 ? ISSUER : `${ISSUER}/${kind}`,
        audiences: ['meshgate'],
        jwks: { file: `${tmp.dir}/jwks.json` },
        mapping: { kind } as { kind: 'kubernetes' },
        trustDomain: 'example.org',
      })),
    });
  });
  after(() => cleanup());

  it('arbitrary strings are refused with a MeshgateError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.base64String()), (text) => refusedCleanly(verifier, text)),
      { numRuns: 500 },
    );
  });

  it('JWT-shaped strings with arbitrary headers and claims are refused with a MeshgateError', async () => {
    const json = fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue()));
    const header = fc.record({ alg: fc.oneof(fc.constantFrom('ES256', 'RS256', 'none', 'HS256', 'EdDSA'), fc.jsonValue()), kid: fc.oneof(fc.constant('k1'), fc.jsonValue()) }, { requiredKeys: [] });
    const payload = fc.record(
      {
        iss: fc.oneof(fc.constantFrom(ISSUER, `${ISSUER}/oidc`), fc.jsonValue()),
        aud: fc.oneof(fc.constant('meshgate'), fc.jsonValue()),
        exp: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
        nbf: fc.oneof(fc.integer(), fc.jsonValue()),
        sub: fc.oneof(fc.constant('spiffe://example.org/a'), fc.string()),
        'kubernetes.io': json,
      },
      { requiredKeys: [] },
    );
    const part = fc.oneof(json.map((v) => b64url(v)), fc.base64String().map((s) => s.replace(/=+$/, '')), fc.string());
    const token = fc.oneof(
      fc.tuple(header.map((h) => b64url(h)), payload.map((p) => b64url(p)), part).map((parts) => parts.join('.')),
      fc.tuple(part, part, part).map((parts) => parts.join('.')),
    );
    await fc.assert(fc.asyncProperty(token, (t) => refusedCleanly(verifier, t)), { numRuns: 500 });
  });

  it('correctly signed tokens with arbitrary claims map or are refused with a MeshgateError', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = fc.record({
      iss: fc.constantFrom(ISSUER, `${ISSUER}/github-actions`, `${ISSUER}/jwt-svid`, `${ISSUER}/oidc`),
      aud: fc.constant('meshgate'),
      exp: fc.constant(now + 300),
      sub: fc.oneof(fc.string(), fc.constant('system:serviceaccount:a:b'), fc.webUrl()),
      email: fc.oneof(fc.emailAddress(), fc.string()),
      email_verified: fc.jsonValue(),
      groups: fc.jsonValue(),
      repository: fc.oneof(fc.constant('acme/api'), fc.string()),
      ref: fc.oneof(fc.constant('refs/heads/main'), fc.string()),
      environment: fc.oneof(fc.string(), fc.jsonValue()),
      'kubernetes.io': fc.oneof(fc.jsonValue(), fc.record({ namespace: fc.string(), serviceaccount: fc.record({ name: fc.string() }) })),
    }, { requiredKeys: ['iss', 'aud', 'exp'] });
    await fc.assert(
      fc.asyncProperty(claims, async (c) => {
        const token = await signToken(key, c as Record<string, unknown>);
        try {
          const identity = await verifier.verify(token);
          assert.match(identity.spiffeId, /^spiffe:\/\/example\.org\/[A-Za-z0-9._\/-]+$/);
        } catch (error) {
          assert.ok(isMeshgateError(error), String(error));
          assert.ok(['MG_TOKEN_CLAIMS_INVALID', 'MG_TRUST_DOMAIN_UNTRUSTED', 'MG_TOKEN_INVALID'].includes(error.code), error.message);
        }
      }),
      { numRuns: 200 },
    );
  });
});
