import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, type JWTPayload } from 'jose';
import { isMeshgateError, type ErrorCode } from '../../../../src/errors/index.ts';
import { createTokenVerifier, escapeSpiffeSegment, type TokenVerifier } from '../../../../src/identity/jwt/index.ts';
import { parseSpiffeId, principalOf } from '../../../../src/identity/spiffe.ts';
import { makeTempDir } from '../../../helpers/certs.ts';
import { b64url, makeSigningKey, rawToken, signToken, type SigningKey } from '../../../helpers/jwks-server.ts';

const NOW = new Date('2030-06-01T12:00:00Z');
const T = Math.floor(NOW.getTime() / 1000);
const K8S = 'https://kubernetes.default.svc.cluster.local';
const GH = 'https://token.actions.githubusercontent.com';
const SVID = 'https://spire.example.org';
const OIDC = 'https://accounts.example.com';
const SMALL = 'https://login.example.net';

/** Every refusal message seen, to check that none of them echoes a token. */
const seen: { token: string; message: string }[] = [];

describe('TokenVerifier (JWKS from files, frozen clock)', () => {
  let verifier: TokenVerifier;
  let rsa: SigningKey;
  let ec: SigningKey;
  let ed: SigningKey;
  let rsa2: SigningKey;
  let cleanup: () => Promise<void>;

  before(async () => {
    const tmp = await makeTempDir('meshgate-jwt-');
    cleanup = tmp.cleanup;
    [rsa, ec, ed, rsa2] = await Promise.all([
      makeSigningKey('RS256', 'k8s-1'),
      makeSigningKey('ES256', 'gh-1'),
      makeSigningKey('EdDSA', 'spire-1'),
      makeSigningKey('RS256', 'idp-1'),
    ]);
    const file = async (name: string, key: SigningKey) => {
      await writeFile(`${tmp.dir}/${name}`, JSON.stringify({ keys: [key.jwk] }));
      return { file: `${tmp.dir}/${name}` };
    };
    verifier = await createTokenVerifier(
      {
        issuers: [
          { issuer: K8S, audiences: ['meshgate'], jwks: await file('k8s.json', rsa), mapping: { kind: 'kubernetes' }, trustDomain: 'cluster.local' },
          { issuer: GH, audiences: ['https://github.com/acme'], jwks: await file('gh.json', ec), mapping: { kind: 'github-actions' }, trustDomain: 'ci.example.org' },
          { issuer: SVID, audiences: ['meshgate'], jwks: await file('spire.json', ed), algorithms: ['EdDSA'], mapping: { kind: 'jwt-svid' }, trustDomain: 'example.org' },
          { issuer: OIDC, audiences: ['meshgate-cli'], jwks: await file('idp.json', rsa2), mapping: { kind: 'oidc', subjectClaim: 'email' }, trustDomain: 'users.example.org' },
          {
            issuer: SMALL, audiences: ['meshgate'], jwks: await file('small.json', rsa2), maxTokenBytes: 1024,
            mapping: { kind: 'oidc', groupsClaim: 'roles' }, trustDomain: 'users.example.org',
          },
        ],
      },
      { now: () => NOW },
    );
  });
  after(() => cleanup());

  const claims = (iss: string, aud: string | string[], extra: JWTPayload = {}): JWTPayload => ({ iss, aud, iat: T - 60, exp: T + 600, ...extra });
  const k8sClaims = (extra: JWTPayload = {}): JWTPayload =>
    claims(K8S, ['meshgate'], {
      sub: 'system:serviceaccount:shop:orders',
      'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'orders', uid: 'u-1' }, pod: { name: 'orders-7d9', uid: 'p-1' } },
      ...extra,
    });

  async function refuses(token: string, code: ErrorCode, message: RegExp): Promise<void> {
    await assert.rejects(verifier.verify(token), (error: unknown) => {
      assert.ok(isMeshgateError(error), `not a MeshgateError: ${String(error)}`);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      seen.push({ token, message: error.message });
      return true;
    });
  }

  describe('mappings', () => {
    it('kubernetes: a projected service-account token gives the same identity as the SVID', async () => {
      const token = await signToken(rsa, k8sClaims({ jti: 'j-1' }));
      const identity = await verifier.verify(token);
      const svid = parseSpiffeId('spiffe://cluster.local/ns/shop/sa/orders');
      assert.equal(identity.spiffeId, svid.uri);
      assert.equal(identity.principal, principalOf(svid));
      assert.equal(identity.trustDomain, 'cluster.local');
      assert.equal(identity.namespace, 'shop');
      assert.equal(identity.serviceAccount, 'orders');
      assert.equal(identity.authMethod, 'jwt');
      assert.deepEqual(identity.claims, { iss: K8S, sub: 'system:serviceaccount:shop:orders', pod: 'orders-7d9' });
      assert.equal(identity.certificate.serialNumber, 'j-1');
      assert.equal(identity.certificate.notAfter, new Date((T + 600) * 1000).toISOString());
      assert.match(identity.certificate.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      assert.ok(Object.isFrozen(identity) && Object.isFrozen(identity.claims));
    });

    it('kubernetes: the legacy sub form alone is enough', async () => {
      const token = await signToken(rsa, claims(K8S, 'meshgate', { sub: 'system:serviceaccount:billing:api' }));
      assert.equal((await verifier.verify(token)).spiffeId, 'spiffe://cluster.local/ns/billing/sa/api');
    });

    it('kubernetes: refuses a token without namespace/serviceaccount claims', async () => {
      await refuses(await signToken(rsa, claims(K8S, 'meshgate', { sub: 'someone' })), 'MG_TOKEN_CLAIMS_INVALID', /no kubernetes\.io\.namespace/);
      await refuses(
        await signToken(rsa, claims(K8S, 'meshgate', { 'kubernetes.io': { namespace: 'shop' } })),
        'MG_TOKEN_CLAIMS_INVALID',
        /not a service-account token/,
      );
    });

    it('kubernetes: refuses a sub that disagrees with the nested claims, and names that are not Kubernetes names', async () => {
      await refuses(await signToken(rsa, k8sClaims({ sub: 'system:serviceaccount:kube-system:admin' })), 'MG_TOKEN_CLAIMS_INVALID', /disagrees/);
      const bad = k8sClaims({ sub: undefined, 'kubernetes.io': { namespace: 'Shop/..', serviceaccount: { name: 'x' } } });
      await refuses(await signToken(rsa, bad), 'MG_TOKEN_CLAIMS_INVALID', /not a Kubernetes namespace/);
    });

    it('github-actions: environment jobs and ref jobs get distinct IDs, and claims carry the job facts', async () => {
      const base = { repository: 'acme/api', repository_owner: 'acme', ref: 'refs/heads/main', actor: 'octocat', workflow: 'deploy', sha: 'abc' };
      const envJob = await verifier.verify(await signToken(ec, claims(GH, 'https://github.com/acme', { ...base, environment: 'production' })));
      assert.equal(envJob.spiffeId, 'spiffe://ci.example.org/github/acme/api/env/production');
      assert.equal(envJob.namespace, null);
      assert.equal(envJob.serviceAccount, null);
      assert.equal(envJob.claims?.repository, 'acme/api');
      assert.equal(envJob.claims?.environment, 'production');
      assert.equal(envJob.claims?.actor, 'octocat');
      assert.equal(envJob.claims?.ref, 'refs/heads/main');

      const branchJob = await verifier.verify(await signToken(ec, claims(GH, 'https://github.com/acme', { ...base, ref: 'refs/heads/production' })));
      assert.equal(branchJob.spiffeId, 'spiffe://ci.example.org/github/acme/api/ref/heads/production');
      const odd = await verifier.verify(await signToken(ec, claims(GH, 'https://github.com/acme', { ...base, ref: 'refs/heads/feat/a_b+c' })));
      assert.equal(odd.spiffeId, 'spiffe://ci.example.org/github/acme/api/ref/heads/feat/a_5Fb_2Bc');
    });

    it('github-actions: refuses a token without a usable repository or ref', async () => {
      await refuses(await signToken(ec, claims(GH, 'https://github.com/acme', { repository: 'acme', ref: 'refs/heads/main' })), 'MG_TOKEN_CLAIMS_INVALID', /<owner>\/<repo>/);
      await refuses(await signToken(ec, claims(GH, 'https://github.com/acme', { repository: 'acme/api', ref: 'main' })), 'MG_TOKEN_CLAIMS_INVALID', /neither an environment/);
    });

    it('jwt-svid: sub is the SPIFFE ID, in the issuer trust domain only', async () => {
      const identity = await verifier.verify(await signToken(ed, claims(SVID, 'meshgate', { sub: 'spiffe://example.org/ns/web/sa/frontend' }), { typ: 'JWT' }));
      assert.equal(identity.spiffeId, 'spiffe://example.org/ns/web/sa/frontend');
      assert.equal(identity.namespace, 'web');
      assert.equal(identity.serviceAccount, 'frontend');
      await refuses(await signToken(ed, claims(SVID, 'meshgate', { sub: 'spiffe://evil.org/ns/web/sa/frontend' })), 'MG_TRUST_DOMAIN_UNTRUSTED', /only for the trust domain "example.org"/);
      await refuses(await signToken(ed, claims(SVID, 'meshgate', { sub: 'frontend' })), 'MG_TOKEN_CLAIMS_INVALID', /must be the workload's SPIFFE ID/);
      await refuses(await signToken(ed, claims(SVID, 'meshgate', { sub: 'spiffe://example.org' })), 'MG_TOKEN_CLAIMS_INVALID', /trust domain itself/);
      await refuses(await signToken(ed, claims(SVID, 'meshgate', { sub: 'spiffe://example.org/x' }), { typ: 'at+jwt' }), 'MG_TOKEN_INVALID', /typ/);
      await refuses(await signToken(ed, { ...claims(SVID, 'x'), aud: undefined, sub: 'spiffe://example.org/x' }), 'MG_TOKEN_AUDIENCE', /has no audience/);
    });

    it('oidc: email or sub becomes user/<escaped>, with email and groups in claims', async () => {
      const identity = await verifier.verify(
        await signToken(rsa2, claims(OIDC, 'meshgate-cli', { sub: '1234', email: 'alice@example.com', email_verified: true, groups: ['dba', 'oncall'] })),
      );
      assert.equal(identity.spiffeId, `spiffe://users.example.org/user/${escapeSpiffeSegment('alice@example.com')}`);
      assert.equal(identity.spiffeId, 'spiffe://users.example.org/user/alice_40example.com');
      assert.deepEqual(identity.claims, { iss: OIDC, sub: '1234', email: 'alice@example.com', email_verified: true, groups: ['dba', 'oncall'] });
      const bySub = await verifier.verify(await signToken(rsa2, claims(SMALL, 'meshgate', { sub: 'auth0|42', roles: ['ro'] })));
      assert.equal(bySub.spiffeId, 'spiffe://users.example.org/user/auth0_7C42');
      assert.deepEqual(bySub.claims?.groups, ['ro']);
      await refuses(await signToken(rsa2, claims(OIDC, 'meshgate-cli', { email: 'bob@example.com', email_verified: false })), 'MG_TOKEN_CLAIMS_INVALID', /not verified/);
      await refuses(await signToken(rsa2, claims(OIDC, 'meshgate-cli', { email: 'bob@example.com', groups: 'dba' })), 'MG_TOKEN_CLAIMS_INVALID', /not a list of strings/);
    });

    it('escapeSpiffeSegment is injective on tricky inputs', () => {
      const inputs = ['a_40b', 'a@b', '.', '..', '_2E', 'é', '_C3_A9', 'a/b', 'a_2Fb'];
      const out = inputs.map(escapeSpiffeSegment);
      assert.equal(new Set(out).size, inputs.length, out.join(' '));
      for (const segment of out) assert.doesNotThrow(() => parseSpiffeId(`spiffe://td/${segment}`), segment);
    });
  });

  describe('refusals', () => {
    it("alg 'none' is MG_TOKEN_INVALID", async () => {
      await refuses(rawToken({ alg: 'none' }, k8sClaims()), 'MG_TOKEN_INVALID', /unsigned \(alg none\)/);
    });

    it('HS256 signed with the RSA public key as the HMAC secret is MG_TOKEN_INVALID', async () => {
      const secret = await exportSPKI(rsa.publicKey);
      const signingInput = `${b64url({ alg: 'HS256', kid: rsa.kid, typ: 'JWT' })}.${b64url(k8sClaims())}`;
      const token = `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
      await refuses(token, 'MG_TOKEN_INVALID', /signed with "HS256", which is not allowed .*allowed: RS256, ES256, EdDSA/);
    });

    it('an algorithm the issuer does not allow is MG_TOKEN_INVALID, even with a valid key', async () => {
      await refuses(await signToken(ec, claims(SVID, 'meshgate', { sub: 'spiffe://example.org/x' }), { kid: 'spire-1' }), 'MG_TOKEN_INVALID', /"ES256".*allowed: EdDSA/);
    });

    it('a wrong audience is MG_TOKEN_AUDIENCE naming the expected ones', async () => {
      await refuses(await signToken(rsa, k8sClaims({ aud: ['vault', 'db'] })), 'MG_TOKEN_AUDIENCE', /is for "vault", "db"; .* for "meshgate": request/);
    });

    it('an unknown kid is MG_TOKEN_INVALID', async () => {
      await refuses(await signToken(rsa, k8sClaims(), { kid: 'k8s-2' }), 'MG_TOKEN_INVALID', /no key .* matches the token's kid "k8s-2"/);
    });

    it('a token signed by another key with the known kid is MG_TOKEN_INVALID', async () => {
      await refuses(await signToken({ ...rsa2, kid: rsa.kid }, k8sClaims()), 'MG_TOKEN_INVALID', /signature does not verify/);
    });

    it('an expired token is MG_TOKEN_EXPIRED with the times; within the skew it is accepted', async () => {
      await refuses(await signToken(rsa, k8sClaims({ exp: T - 31 })), 'MG_TOKEN_EXPIRED', /expired at 2030-06-01T11:59:29\.000Z \(now 2030-06-01T12:00:00\.000Z, 30 s clock skew/);
      assert.equal((await verifier.verify(await signToken(rsa, k8sClaims({ exp: T - 29 })))).namespace, 'shop');
    });

    it('a future nbf beyond the skew is MG_TOKEN_EXPIRED; within the skew it is accepted', async () => {
      await refuses(await signToken(rsa, k8sClaims({ nbf: T + 31 })), 'MG_TOKEN_EXPIRED', /not valid until 2030-06-01T12:00:31\.000Z/);
      assert.equal((await verifier.verify(await signToken(rsa, k8sClaims({ nbf: T + 29 })))).serviceAccount, 'orders');
    });

    it('a token without exp is MG_TOKEN_INVALID', async () => {
      await refuses(await signToken(rsa, k8sClaims({ exp: undefined })), 'MG_TOKEN_INVALID', /no exp claim/);
    });

    it('a tampered payload is MG_TOKEN_INVALID', async () => {
      const [header, , signature] = (await signToken(rsa, k8sClaims())).split('.');
      const forged = k8sClaims({ sub: 'system:serviceaccount:kube-system:admin', 'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'admin' } } });
      await refuses(`${header}.${b64url(forged)}.${signature}`, 'MG_TOKEN_INVALID', /signature does not verify/);
    });

    it('an oversized token is MG_TOKEN_INVALID, by the global and by the per-issuer limit', async () => {
      await refuses(await signToken(rsa, k8sClaims({ padding: 'x'.repeat(9000) })), 'MG_TOKEN_INVALID', /longer than 8192 bytes/);
      await refuses(await signToken(rsa2, claims(SMALL, 'meshgate', { sub: 'u', padding: 'x'.repeat(1200) })), 'MG_TOKEN_INVALID', /longer than 1024 bytes/);
    });

    it('an unknown issuer is MG_TOKEN_ISSUER_UNKNOWN, and a missing one MG_TOKEN_INVALID', async () => {
      await refuses(await signToken(rsa, k8sClaims({ iss: 'https://evil.example' })), 'MG_TOKEN_ISSUER_UNKNOWN', /"https:\/\/evil\.example" is not trusted/);
      await refuses(await signToken(rsa, k8sClaims({ iss: undefined })), 'MG_TOKEN_INVALID', /no iss/);
    });

    it('strings that are not JWTs are MG_TOKEN_INVALID', async () => {
      await refuses('', 'MG_TOKEN_INVALID', /not a JWT/);
      await refuses(`Bearer ${await signToken(rsa, k8sClaims())}`, 'MG_TOKEN_INVALID', /no 'Bearer ' prefix/);
      await refuses('a.b.c.d.e', 'MG_TOKEN_INVALID', /encrypted \(JWE\)/);
      await refuses('e30.bm90IGpzb24.', 'MG_TOKEN_INVALID', /not base64url-encoded JSON/);
    });

    it('no refusal message echoes the token or its signature', () => {
      assert.ok(seen.length > 20);
      for (const { token, message } of seen) {
        const parts = token.split('.');
        const secretish = parts.length === 3 && parts[2] !== '' ? parts[2]! : token;
        if (secretish.length >= 8) assert.ok(!message.includes(secretish), message);
      }
    });
  });
});
