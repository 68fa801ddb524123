/**
 * A JWKS endpoint for token tests: HTTPS on 127.0.0.1, port 0, with a server certificate
 * from meshgate's own CA made in a temp dir (so tests also exercise jwks.caFile). Switches
 * make it go down (listener closed: connection refused), answer slowly, answer an HTTP
 * error, or rotate keys; it counts the requests it receives. Plus signing-key helpers.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { initCa, issueServerCert } from '../../src/identity/ca.ts';
import { makeTempDir } from './certs.ts';

export type TestAlg = 'RS256' | 'ES256' | 'EdDSA';

export interface SigningKey {
  readonly alg: TestAlg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public key as published in a JWKS (with kid, alg and use). */
  readonly jwk: JWK;
}

export async function makeSigningKey(alg: TestAlg, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

/** Signs `claims` with `key`; `header` overrides the protected header (alg, kid, typ). */
export function signToken(key: SigningKey, claims: JWTPayload, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey);
}

/** base64url of a string, bytes, or (as JSON) any other value: for hand-made, hostile tokens. */
export function b64url(value: unknown): string {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value instanceof Uint8Array ? Buffer.from(value) : Buffer.from(JSON.stringify(value));
  return bytes.toString('base64url');
}

/** A compact JWS assembled by hand (no signing library), e.g. `alg: none`. */
export function rawToken(header: object, payload: object, signature = ''): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`;
}

export interface JwksServer {
  /** `https://127.0.0.1:<port>/jwks.json` */
  readonly url: string;
  /** The CA bundle that signs the server's certificate, for jwks.caFile. */
  readonly caFile: string;
  /** Requests received since start (or the last resetRequests). */
  readonly requests: number;
  resetRequests(): void;
  /** Publishes a new key set (key rotation). */
  setKeys(keys: readonly JWK[]): void;
  /** Delays every answer by `ms` (0 for prompt answers). */
  setDelay(ms: number): void;
  /** Answers with this HTTP status and no JWKS (200 restores normal answers). */
  setStatus(status: number): void;
  /** Closes the listener: fetches get ECONNREFUSED. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Stops the server and removes its temp dir. */
  close(): Promise<void>;
}

export async function startJwksServer(keys: readonly JWK[]): Promise<JwksServer> {
  const tmp = await makeTempDir('meshgate-jwks-');
  await initCa({ dir: `${tmp.dir}/ca`, trustDomain: 'jwks.test' });
  const issued = await issueServerCert({ caDir: `${tmp.dir}/ca`, outDir: tmp.dir, ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  let published: readonly JWK[] = keys;
  let delayMs = 0;
  let status = 200;
  let requests = 0;
  const timers = new Set<NodeJS.Timeout>();

  const server = https.createServer({ cert: await readFile(issued.certPath), key: await readFile(issued.keyPath) }, (req, res) => {
    requests += 1;
    const answer = (): void => {
      if (status !== 200) {
        res.writeHead(status).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    };
    if (delayMs === 0) return answer();
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer();
    }, delayMs);
    timers.add(timer);
  });

  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}/jwks.json`,
    caFile: issued.bundlePath,
    get requests() {
      return requests;
    },
    resetRequests: () => {
      requests = 0;
    },
    setKeys: (next) => {
      published = next;
    },
    setDelay: (ms) => {
      delayMs = ms;
    },
    setStatus: (next) => {
      status = next;
    },
    down: stop,
    up: () => listen(port),
    close: async () => {
      await stop();
      await tmp.cleanup();
    },
  };
}
