import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { JWTPayload } from 'jose';
import { isMeshgateError, type ErrorCode } from '../../../../src/errors/index.ts';
import { createTokenVerifier, JWKS_FETCH_CHANNEL, type TokenVerifier } from '../../../../src/identity/jwt/index.ts';
import { makeSigningKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../../../helpers/jwks-server.ts';

const ISSUER = 'https://kubernetes.default.svc';
const COOLDOWN_MS = 400;
const TIMEOUT_MS = 300;

function claims(): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: 'meshgate', sub: 'system:serviceaccount:shop:orders', iat: now, exp: now + 300 };
}

async function refuses(promise: Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isMeshgateError(error), `not a MeshgateError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

describe('TokenVerifier with a JWKS URL', () => {
  let server: JwksServer;
  let k1: SigningKey;
  let k2: SigningKey;

  /** A verifier with its own, empty cache. */
  const fresh = (jwks: Record<string, unknown> = {}): Promise<TokenVerifier> =>
    createTokenVerifier({
      issuers: [
        {
          issuer: ISSUER,
          audiences: ['meshgate'],
          jwks: { url: server.url, caFile: server.caFile, cooldownMs: COOLDOWN_MS, timeoutMs: TIMEOUT_MS, ...jwks },
          mapping: { kind: 'kubernetes' },
          trustDomain: 'cluster.local',
        },
      ],
    });

  before(async () => {
    [k1, k2] = await Promise.all([makeSigningKey('RS256', 'k1'), makeSigningKey('ES256', 'k2')]);
    server = await startJwksServer([k1.jwk]);
  });
  after(() => server.close());
  beforeEach(() => {
    server.setKeys([k1.jwk]);
    server.setDelay(0);
    server.setStatus(200);
    server.resetRequests();
  });

  it('fetches the keys over HTTPS with jwks.caFile once, then serves from the cache', async () => {
    const verifier = await fresh();
    assert.equal(server.requests, 0, 'no fetch before the first token');
    assert.equal((await verifier.verify(await signToken(k1, claims()))).spiffeId, 'spiffe://cluster.local/ns/shop/sa/orders');
    await verifier.verify(await signToken(k1, claims()));
    assert.equal(server.requests, 1);
  });

  it('an unknown kid triggers exactly one refetch per cooldown; a rotation is picked up after it', async () => {
    const verifier = await fresh();
    await verifier.verify(await signToken(k1, claims()));
    assert.equal(server.requests, 1);
    await sleep(COOLDOWN_MS + 50);

    // A burst of unknown kids (forged or from a rotation meshgate has not seen): one refetch.
    const unknown = await signToken(k2, claims());
    for (let i = 0; i < 5; i += 1) await refuses(verifier.verify(unknown), 'MG_TOKEN_INVALID', /no key .* kid "k2".* at most every 400 ms/);
    await Promise.all(Array.from({ length: 5 }, () => refuses(verifier.verify(unknown), 'MG_TOKEN_INVALID', /kid "k2"/)));
    assert.equal(server.requests, 2);

    // The issuer rotates to k2; within the cooldown meshgate does not ask again...
    server.setKeys([k2.jwk]);
    await refuses(verifier.verify(unknown), 'MG_TOKEN_INVALID', /kid "k2"/);
    assert.equal(server.requests, 2);
    // ...and after it, the first k2 token causes one refetch and verifies.
    await sleep(COOLDOWN_MS + 50);
    assert.equal((await verifier.verify(unknown)).namespace, 'shop');
    assert.equal(server.requests, 3);
    // k1 is gone from the set; its tokens now fail (and cannot cause a refetch yet).
    await refuses(verifier.verify(await signToken(k1, claims())), 'MG_TOKEN_INVALID', /kid "k1"/);
    assert.equal(server.requests, 3);
  });

  it('JWKS endpoint down is MG_JWKS_UNAVAILABLE, and recovers when it is back', async () => {
    const verifier = await fresh();
    const token = await signToken(k1, claims());
    await server.down();
    try {
      await refuses(verifier.verify(token), 'MG_JWKS_UNAVAILABLE', /cannot fetch the signing keys of https:\/\/kubernetes\.default\.svc .*ECONNREFUSED/);
    } finally {
      await server.up();
    }
    assert.equal((await verifier.verify(token)).serviceAccount, 'orders');
  });

  it('a slow JWKS endpoint fails within the timeout (plus a small margin), never hangs', async () => {
    const verifier = await fresh();
    server.setDelay(10_000);
    const started = performance.now();
    await refuses(verifier.verify(await signToken(k1, claims())), 'MG_JWKS_UNAVAILABLE', /no answer within 300 ms/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= TIMEOUT_MS - 20 && elapsed < TIMEOUT_MS + 400, `took ${elapsed.toFixed(0)} ms`);
    assert.equal(server.requests, 1);
  });

  it('an HTTP error from the JWKS endpoint is MG_JWKS_UNAVAILABLE with the status', async () => {
    const verifier = await fresh();
    server.setStatus(503);
    await refuses(verifier.verify(await signToken(k1, claims())), 'MG_JWKS_UNAVAILABLE', /answered HTTP 503/);
  });

  it('a JWKS endpoint whose certificate is not trusted is MG_JWKS_UNAVAILABLE with a caFile hint', async () => {
    const verifier = await fresh({ caFile: undefined });
    await refuses(verifier.verify(await signToken(k1, claims())), 'MG_JWKS_UNAVAILABLE', /set jwks\.caFile/);
    assert.equal(server.requests, 0, 'the TLS handshake fails before any request');
  });

  it('an answer that is not a JWKS is MG_JWKS_UNAVAILABLE', async () => {
    const verifier = await fresh();
    server.setKeys('nope' as never);
    await refuses(verifier.verify(await signToken(k1, claims())), 'MG_JWKS_UNAVAILABLE', /did not return a usable JWKS/);
  });

  it('publishes each fetch\'s outcome for metrics, and only while someone listens', async () => {
    const outcomes: string[] = [];
    const listener = (message: unknown) => void outcomes.push((message as { outcome: string }).outcome);
    diagnostics.subscribe(JWKS_FETCH_CHANNEL, listener);
    try {
      await (await fresh()).verify(await signToken(k1, claims()));
      server.setStatus(500);
      await refuses((await fresh()).verify(await signToken(k1, claims())), 'MG_JWKS_UNAVAILABLE', /HTTP 500/);
    } finally {
      diagnostics.unsubscribe(JWKS_FETCH_CHANNEL, listener);
    }
    assert.deepEqual(outcomes, ['success', 'failure']);
  });
});
