/**
 * The signing endpoint's refusals, over real HTTPS on port 0, with a stand-in token verifier
 * (the JWKS path is covered in test/integration/agent.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { mgError } from '../../../../src/errors/index.ts';
import { initCa, issueServerCert, issueSvid } from '../../../../src/identity/ca.ts';
import { generateKeyAndCsr, JoinTokenStore, MAX_REQUEST_BYTES, startSigningEndpoint, type SigningEndpoint } from '../../../../src/identity/signer/index.ts';
import type { Identity } from '../../../../src/identity/types.ts';
import { generateKeyPair, SIGNING_ALGORITHM, x509 } from '../../../../src/identity/x509.ts';
import { makeOddLeaf, makeTempDir, makeTestCa } from '../../../helpers/certs.ts';
import { cleanup } from '../../../helpers/cleanup.ts';

const GOOD = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJnb29kIn0.c2lnbmF0dXJl';
const FOREIGN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJmb3JlaWduIn0.c2lnbmF0dXJl';
const SECRET_BAD = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiYWQifQ.dG9wLXNlY3JldA';

function identity(spiffeId: string): Identity {
  const [, trustDomain = ''] = /^spiffe:\/\/([^/]+)/.exec(spiffeId) ?? [];
  const empty = { serialNumber: '', notBefore: '', notAfter: '', fingerprint256: '' };
  return { spiffeId, trustDomain, namespace: null, serviceAccount: null, principal: spiffeId.slice(9), authMethod: 'jwt', certificate: empty };
}

async function verifyToken(token: string): Promise<Identity> {
  if (token === GOOD) return identity('spiffe://example.org/ns/shop/sa/orders');
  if (token === FOREIGN) return identity('spiffe://other.org/ns/shop/sa/orders');
  throw mgError('MG_TOKEN_INVALID', "the token's signature does not verify");
}

const caPemOf = (dir: string) => readFileSync(join(dir, 'bundle.pem'), 'utf8');

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: { certificate?: string; spiffeId?: string; error?: { code: string; message: string } };
}

describe('signing endpoint', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let caDir: string;
  let caPem: string;
  let endpoint: SigningEndpoint;
  let joinTokens: JoinTokenStore;
  const logs: string[] = [];

  before(async () => {
    tmp = await makeTempDir();
    caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org' });
    const server = await issueServerCert({ caDir, outDir: tmp.dir, ipAddresses: ['127.0.0.1'] });
    caPem = await readFile(join(caDir, 'bundle.pem'), 'utf8');
    joinTokens = new JoinTokenStore(caDir);
    endpoint = await startSigningEndpoint({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: server.certPath, key: server.keyPath },
      caDir,
      verifyToken,
      joinTokens,
      issuancesPerMinute: 3,
      caLockTimeoutMs: 200,
      log: { info: (m, f) => logs.push(`${m} ${JSON.stringify(f)}`), warn: (m, f) => logs.push(`${m} ${JSON.stringify(f)}`) },
    });
  });
  after(async () => {
    await cleanup(
      () => endpoint?.close(),
      () => tmp?.cleanup(),
    );
  });

  function send(options: { method?: string; path?: string; body?: string | Buffer; headers?: Record<string, string>; cert?: string; key?: string; chunked?: boolean }): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: endpoint.port, method: options.method ?? 'POST', path: options.path ?? '/v1/svid', ca: caPem, agent: false, headers: options.headers ?? {}, ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: text === '' ? {} : JSON.parse(text) });
          });
        },
      );
      req.on('error', reject);
      if (options.chunked === true && options.body !== undefined) {
        // No content-length: the limit must hold while streaming too.
        const body = Buffer.from(options.body);
        for (let i = 0; i < body.length; i += 16_384) req.write(body.subarray(i, i + 16_384));
        req.end();
      } else req.end(options.body);
    });
  }

  const csrBody = async () => JSON.stringify({ csr: (await generateKeyAndCsr()).csrPem });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

  it('issues the SPIFFE ID the token proves, whatever the CSR asks for', async () => {
    const keys = await generateKeyPair();
    const greedy = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      name: 'CN=root',
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/ns/kube-system/sa/admin' }])],
    });
    const answer = await send({ body: JSON.stringify({ csr: greedy.toString('pem') }), headers: bearer(GOOD) });
    assert.equal(answer.status, 200, answer.text);
    const cert = new X509Certificate(answer.json.certificate ?? '');
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/shop/sa/orders');
    assert.ok(!cert.subject);
    assert.equal(answer.json.spiffeId, 'spiffe://example.org/ns/shop/sa/orders');
  });

  it('401 without a credential, with a malformed header, or a token that does not verify; never echoing it', async () => {
    const body = await csrBody();
    const none = await send({ body });
    assert.equal(none.status, 401);
    assert.equal(none.json.error?.code, 'MG_TOKEN_INVALID');
    assert.equal((await send({ body, headers: { authorization: `Basic ${SECRET_BAD}` } })).status, 401);
    const bad = await send({ body, headers: bearer(SECRET_BAD) });
    assert.equal(bad.status, 401);
    assert.ok(!bad.text.includes(SECRET_BAD) && !bad.text.includes('dG9wLXNlY3JldA'));
    assert.ok(!logs.join('\n').includes('dG9wLXNlY3JldA'), 'nor logging it');
  });

  it('403 for an identity in another trust domain', async () => {
    const answer = await send({ body: await csrBody(), headers: bearer(FOREIGN) });
    assert.equal(answer.status, 403);
    assert.equal(answer.json.error?.code, 'MG_TRUST_DOMAIN_UNTRUSTED');
  });

  it('400 for a body that is not JSON, has no csr, or carries a tampered CSR', async () => {
    assert.equal((await send({ body: 'csr=1', headers: bearer(GOOD) })).json.error?.code, 'MG_SIGNER_REQUEST_INVALID');
    assert.equal((await send({ body: '{"pem":"x"}', headers: bearer(GOOD) })).status, 400);
    const { csrPem } = await generateKeyAndCsr();
    const der = Buffer.from(x509.PemConverter.decode(csrPem)[0] as ArrayBuffer);
    der[der.length - 2] = (der[der.length - 2] ?? 0) ^ 0xff;
    const tampered = `${x509.PemConverter.encode(Uint8Array.from(der).buffer, 'CERTIFICATE REQUEST')}\n`;
    const answer = await send({ body: JSON.stringify({ csr: tampered }), headers: bearer(GOOD) });
    assert.equal(answer.status, 400);
    assert.equal(answer.json.error?.code, 'MG_CSR_INVALID');
  });

  it('413 for a body over 64 KiB, declared or streamed', async () => {
    const huge = JSON.stringify({ csr: 'x'.repeat(MAX_REQUEST_BYTES) });
    const declared = await send({ body: huge, headers: bearer(GOOD) });
    assert.equal(declared.status, 413);
    assert.equal(declared.json.error?.code, 'MG_PACKET_TOO_LARGE');
    const streamed = await send({ body: huge, headers: bearer(GOOD), chunked: true }).catch((error: NodeJS.ErrnoException) => error);
    // The server may answer and close before the client has finished sending.
    assert.ok(!(streamed instanceof Error) ? streamed.status === 413 : streamed.code === 'ECONNRESET' || streamed.code === 'EPIPE');
  });

  it('404 for another path, 405 for another method', async () => {
    assert.equal((await send({ path: '/v1/other', body: '{}' })).status, 404);
    const get = await send({ method: 'GET' });
    assert.equal(get.status, 405);
    assert.equal(get.headers['allow'], 'POST');
  });

  it('renews for a client presenting its current SVID; refuses a certificate from another CA', async () => {
    const issued = await issueSvid({ caDir, spiffeId: 'spiffe://example.org/vm/builder-2', outDir: join(tmp.dir, 'svid') });
    const renewal = await send({ body: await csrBody(), cert: await readFile(issued.certPath, 'utf8'), key: await readFile(issued.keyPath, 'utf8') });
    assert.equal(renewal.status, 200, renewal.text);
    assert.equal(renewal.json.spiffeId, 'spiffe://example.org/vm/builder-2');
    const stranger = await makeOddLeaf(await makeTestCa('example.org'), { uris: ['spiffe://example.org/vm/builder-2'] });
    const refused = await send({ body: await csrBody(), cert: stranger.certPem, key: stranger.keyPem });
    assert.equal(refused.status, 401);
    assert.equal(refused.json.error?.code, 'MG_CLIENT_CERT_UNTRUSTED');
  });

  it("refuses a renewal vouched for by a root that is in bundle.pem but not the CA's own", async () => {
    const dir = join(tmp.dir, 'ca-shared');
    await initCa({ dir, trustDomain: 'example.org' });
    const otherMesh = await makeTestCa('example.org');
    await writeFile(join(dir, 'bundle.pem'), `${await readFile(join(dir, 'bundle.pem'), 'utf8')}${otherMesh.pem}\n`);
    const server = await issueServerCert({ caDir: dir, outDir: join(tmp.dir, 'srv-shared'), ipAddresses: ['127.0.0.1'] });
    const shared = await startSigningEndpoint({ host: '127.0.0.1', port: 0, tls: { cert: server.certPath, key: server.keyPath }, caDir: dir });
    try {
      const leaf = await makeOddLeaf(otherMesh, { uris: ['spiffe://example.org/ns/shop/sa/orders'] });
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: shared.port, method: 'POST', path: '/v1/svid', ca: caPemOf(dir), cert: leaf.certPem, key: leaf.keyPem, agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        csrBody().then((body) => req.end(body), reject);
      });
      assert.equal(answer.status, 401, answer.text);
      assert.match(answer.text, /MG_CLIENT_CERT_UNTRUSTED.*not issued by meshgate's CA/);
    } finally {
      await shared.close();
    }
  });

  it('spends a join token only when a certificate is issued', async () => {
    const { token } = await joinTokens.create({ spiffeId: 'spiffe://example.org/vm/builder-3' });
    const badCsr = await send({ body: JSON.stringify({ csr: 'nope' }), headers: bearer(token) });
    assert.equal(badCsr.status, 400);
    const ok = await send({ body: await csrBody(), headers: bearer(token) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.spiffeId, 'spiffe://example.org/vm/builder-3');
    const again = await send({ body: await csrBody(), headers: bearer(token) });
    assert.equal(again.status, 401);
    assert.match(again.json.error?.message ?? '', /already used/);
  });

  it('429 with Retry-After once an identity exceeds its issuances per minute', async () => {
    const { token } = await joinTokens.create({ spiffeId: 'spiffe://example.org/vm/loop' });
    const issued = await issueSvid({ caDir, spiffeId: 'spiffe://example.org/vm/loop', outDir: join(tmp.dir, 'loop') });
    const cert = await readFile(issued.certPath, 'utf8');
    const key = await readFile(issued.keyPath, 'utf8');
    const statuses: number[] = [(await send({ body: await csrBody(), headers: bearer(token) })).status];
    for (let i = 0; i < 3; i++) statuses.push((await send({ body: await csrBody(), cert, key })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const limited = await send({ body: await csrBody(), cert, key });
    assert.equal(limited.json.error?.code, 'MG_SIGNER_RATE_LIMITED');
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
  });

  it('503 while the CA is locked by another process, without spending the token', async () => {
    const { token } = await joinTokens.create({ spiffeId: 'spiffe://example.org/vm/builder-4' });
    await writeFile(join(caDir, 'ca.lock'), 'someone else\n');
    try {
      const busy = await send({ body: await csrBody(), headers: bearer(token) });
      assert.equal(busy.status, 503);
      assert.equal(busy.json.error?.code, 'MG_CA_BUSY');
    } finally {
      await rm(join(caDir, 'ca.lock'), { force: true });
    }
    assert.equal((await send({ body: await csrBody(), headers: bearer(token) })).status, 200);
  });

  it('hides CA problems from callers behind 503, and logs them', async () => {
    const other = join(tmp.dir, 'ca-broken');
    await initCa({ dir: other, trustDomain: 'example.org' });
    const server = await issueServerCert({ caDir: other, outDir: join(tmp.dir, 'srv-broken'), ipAddresses: ['127.0.0.1'] });
    const otherPem = await readFile(join(other, 'bundle.pem'), 'utf8');
    const warned: string[] = [];
    const broken = await startSigningEndpoint({
      host: '127.0.0.1', port: 0, tls: { cert: server.certPath, key: server.keyPath }, caDir: other, verifyToken,
      log: { info: () => {}, warn: (m, f) => warned.push(`${m} ${JSON.stringify(f)}`) },
    });
    try {
      await writeFile(join(other, 'ca.key'), 'garbage');
      const body = await csrBody();
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: broken.port, method: 'POST', path: '/v1/svid', ca: otherPem, agent: false, headers: bearer(GOOD) }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
      assert.equal(answer.status, 503);
      assert.ok(!answer.text.includes(other), 'no server paths in the answer');
      assert.match(warned.join('\n'), /signing request failed .*MG_CONFIG_INVALID.*ca\.key/);
    } finally {
      await broken.close();
    }
  });
});
