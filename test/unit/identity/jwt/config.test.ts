import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { isMeshgateError, type ErrorCode } from '../../../../src/errors/index.ts';
import { createTokenVerifier, parseTokenVerifierConfig, type TokenVerifierConfigInput } from '../../../../src/identity/jwt/index.ts';
import { makeTempDir } from '../../../helpers/certs.ts';
import { makeSigningKey } from '../../../helpers/jwks-server.ts';

type IssuerInput = TokenVerifierConfigInput['issuers'][number];

const base: IssuerInput = {
  issuer: 'https://kubernetes.default.svc',
  audiences: ['meshgate'],
  jwks: { url: 'https://kubernetes.default.svc/openid/v1/jwks' },
  mapping: { kind: 'kubernetes' },
  trustDomain: 'cluster.local',
};

function refused(issuer: Record<string, unknown>, field: RegExp, message: RegExp): void {
  assert.throws(
    () => parseTokenVerifierConfig({ issuers: [issuer] }),
    (error: unknown) => {
      assert.ok(isMeshgateError(error));
      assert.equal(error.code, 'MG_CONFIG_INVALID');
      assert.match(error.message, field);
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('token verifier config', () => {
  it('fills in the documented defaults and freezes the result', () => {
    const config = parseTokenVerifierConfig({ issuers: [base] });
    const issuer = config.issuers[0]!;
    assert.deepEqual(issuer.algorithms, ['RS256', 'ES256', 'EdDSA']);
    assert.equal(issuer.clockSkewSeconds, 30);
    assert.equal(issuer.maxTokenBytes, 8192);
    assert.deepEqual(issuer.jwks, { url: base.jwks && 'url' in base.jwks ? base.jwks.url : '', cacheMaxAgeSeconds: 600, timeoutMs: 2000, cooldownMs: 30_000 });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(issuer) && Object.isFrozen(issuer.jwks));
    const oidc = parseTokenVerifierConfig({ issuers: [{ ...base, mapping: { kind: 'oidc' } }] }).issuers[0]!.mapping;
    assert.deepEqual(oidc, { kind: 'oidc', subjectClaim: 'sub', groupsClaim: 'groups' });
  });

  it("refuses alg 'none' at load", () => {
    refused({ ...base, algorithms: ['RS256', 'none'] }, /tokens\.issuers\.0\.algorithms\.1/, /unsigned token/);
  });

  it('refuses every HS* algorithm at load', () => {
    for (const alg of ['HS256', 'HS384', 'HS512', 'hs256']) refused({ ...base, algorithms: [alg] }, /algorithms\.0/, /HMAC/);
  });

  it('refuses unknown algorithms and an empty list', () => {
    refused({ ...base, algorithms: ['RS1'] }, /algorithms\.0/, /not a supported algorithm/);
    refused({ ...base, algorithms: [] }, /algorithms/, /./);
  });

  it('refuses plain http to a non-loopback JWKS host, and accepts it for loopback', () => {
    refused({ ...base, jwks: { url: 'http://idp.example.com/jwks' } }, /jwks/, /./);
    for (const url of ['http://127.0.0.1:8080/jwks', 'http://localhost/jwks', 'http://[::1]:9/jwks', 'https://idp.example.com/jwks']) {
      assert.doesNotThrow(() => parseTokenVerifierConfig({ issuers: [{ ...base, jwks: { url } }] }), url);
    }
  });

  it('explains the http refusal when the JWKS object is otherwise well-formed', () => {
    const error = (() => {
      try {
        parseTokenVerifierConfig({ issuers: [{ ...base, jwks: { url: 'http://10.0.0.1/jwks' } }] });
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(isMeshgateError(error));
    assert.match(error.message, /tokens\.issuers\.0\.jwks\.url: plain http is allowed only for loopback addresses/);
  });

  it('refuses clock skew above 300 s, unknown keys, duplicate issuers, a bad trust domain, caFile on http', () => {
    refused({ ...base, clockSkewSeconds: 301 }, /clockSkewSeconds/, /300/);
    refused({ ...base, clockskew: 5 }, /tokens/, /clockskew/);
    refused({ ...base, trustDomain: 'Cluster.Local' }, /trustDomain/, /lower case/);
    refused({ ...base, mapping: { kind: 'saml' } }, /mapping/, /./);
    refused({ ...base, audiences: [] }, /audiences/, /./);
    refused({ ...base, jwks: {} }, /jwks/, /either \{ url/);
    refused({ ...base, jwks: { url: 'https://x/jwks', file: 'jwks.json' } }, /jwks/, /either \{ url/);
    assert.throws(() => parseTokenVerifierConfig({ issuers: [base, base] }), /configured twice/);
    assert.throws(
      () => parseTokenVerifierConfig({ issuers: [{ ...base, jwks: { url: 'http://127.0.0.1/jwks', caFile: '/ca.pem' } }] }),
      /caFile applies only to an https/,
    );
    assert.throws(() => parseTokenVerifierConfig({ issuers: [] }), (e: unknown) => isMeshgateError(e) && e.code === 'MG_CONFIG_INVALID');
  });

  describe('JWKS files', () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ dir, cleanup } = await makeTempDir('meshgate-jwt-config-'));
    });
    after(() => cleanup());

    async function failsToBuild(contents: string | null, message: RegExp, code: ErrorCode = 'MG_CONFIG_INVALID'): Promise<void> {
      const file = `${dir}/jwks-${Math.random().toString(36).slice(2)}.json`;
      if (contents !== null) await writeFile(file, contents);
      await assert.rejects(createTokenVerifier({ issuers: [{ ...base, jwks: { file } }] }), (error: unknown) => {
        assert.ok(isMeshgateError(error));
        assert.equal(error.code, code);
        assert.match(error.message, message);
        return true;
      });
    }

    it('refuses a missing, non-JSON, empty or private-key JWKS file at startup', async () => {
      const key = await makeSigningKey('ES256', 'k1');
      await failsToBuild(null, /cannot read .*ENOENT/);
      await failsToBuild('{not json', /not valid JSON/);
      await failsToBuild('{"keys":[]}', /has no keys/);
      await failsToBuild(JSON.stringify({ keys: [{ ...key.jwk, d: 'secret' }] }), /private or symmetric key/);
      await failsToBuild(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }), /private or symmetric key/);
    });

    it('refuses an unreadable jwks.caFile at startup', async () => {
      await assert.rejects(
        createTokenVerifier({ issuers: [{ ...base, jwks: { url: 'https://127.0.0.1:1/jwks', caFile: `${dir}/nope.pem` } }] }),
        /jwks\.caFile .*ENOENT/,
      );
    });
  });
});
