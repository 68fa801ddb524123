/**
 * Where an issuer's signing keys come from: a JWKS file read once at startup, or a JWKS URL.
 *
 * For URLs, jose's createRemoteJWKSet keeps the cache, the refetch-on-unknown-kid cooldown,
 * the request timeout and the coalescing of concurrent fetches. jose fetches with the global
 * fetch, which cannot take a private CA, so it is given a small node:https fetch instead
 * (its `customFetch` hook): that is where `jwks.caFile`, the response size cap and the
 * refusal of redirects live. Every failure becomes MG_JWKS_UNAVAILABLE; only "no key matches
 * this token" is left for the verifier, because that is the token's fault, not the issuer's.
 */
import diagnostics from 'node:diagnostics_channel';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type FetchImplementation, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { isMeshgateError, mgError, type MeshgateError } from '../../errors/index.ts';
import type { JwksConfig, RemoteJwksConfig } from './config.ts';

/** A JWKS is a few keys; anything much larger is a misconfigured or hostile endpoint. */
export const JWKS_MAX_BYTES = 1024 * 1024;

export interface KeySource {
  /** jose key resolver; throws MeshgateError, or jose's JWKSNoMatchingKey / JWKSMultipleMatchingKeys. */
  readonly getKey: JWTVerifyGetKey;
  /** For messages: where the keys come from. */
  readonly where: string;
  /** How often an unknown kid may cause a refetch, for messages; null for a file. */
  readonly cooldownMs: number | null;
}

/** TLS verification failures, worth a hint about jwks.caFile. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Each fetch's outcome, for metrics (`{ outcome: 'success' | 'failure' }`, the same two objects
 * every time); a fetch is minutes apart, and publishing costs nothing without subscribers.
 */
export const JWKS_FETCH_CHANNEL = 'meshgate:identity:jwks_fetch';
const jwksFetches = diagnostics.channel(JWKS_FETCH_CHANNEL);
const FETCHED = Object.freeze({ outcome: 'success' });
const NOT_FETCHED = Object.freeze({ outcome: 'failure' });

/** A fetch for jose that honours its abort signal and buffers at most JWKS_MAX_BYTES. */
function nodeFetch(ca: string | undefined): FetchImplementation {
  const fetch = nodeFetchOnce(ca);
  return (url, init) =>
    fetch(url, init).then(
      (response) => {
        if (jwksFetches.hasSubscribers) jwksFetches.publish(FETCHED);
        return response;
      },
      (error: unknown) => {
        if (jwksFetches.hasSubscribers) jwksFetches.publish(NOT_FETCHED);
        throw error;
      },
    );
}

function nodeFetchOnce(ca: string | undefined): FetchImplementation {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const { signal } = init;
      if (signal.aborted) return reject(signal.reason);
      const target = new URL(url);
      const transport = target.protocol === 'https:' ? https : http;
      const headers = Object.fromEntries(init.headers.entries());
      // agent:false: one connection per fetch and nothing left open between fetches minutes apart.
      const request = transport.request(target, { method: 'GET', headers, agent: false, ...(ca === undefined ? {} : { ca }) });
      const onAbort = (): void => {
        request.destroy();
        reject(signal.reason); // jose turns a TimeoutError reason into JWKSTimeout
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const fail = (error: unknown): void => {
        signal.removeEventListener('abort', onAbort);
        request.destroy();
        reject(error);
      };
      request.on('error', fail);
      request.on('response', (response) => {
        const status = response.statusCode ?? 0;
        if (status !== 200) {
          response.resume();
          return fail(mgError('MG_JWKS_UNAVAILABLE', `the JWKS endpoint ${url} answered HTTP ${status} (meshgate follows no redirects); check the issuer's jwks url`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > JWKS_MAX_BYTES) return fail(mgError('MG_JWKS_UNAVAILABLE', `the JWKS at ${url} is larger than ${JWKS_MAX_BYTES} bytes`));
          chunks.push(chunk);
        });
        response.on('error', fail);
        response.on('end', () => {
          signal.removeEventListener('abort', onAbort);
          resolve(new Response(Buffer.concat(chunks), { status: 200, headers: { 'content-type': 'application/json' } }));
        });
      });
      request.end();
    });
}

function unavailable(issuer: string, jwks: RemoteJwksConfig, error: unknown): MeshgateError {
  const prefix = `cannot fetch the signing keys of ${issuer} from ${jwks.url}`;
  if (error instanceof errors.JWKSTimeout) {
    return mgError('MG_JWKS_UNAVAILABLE', `${prefix}: no answer within ${jwks.timeoutMs} ms; tokens from this issuer cannot be verified until it answers (try again shortly)`, error);
  }
  if (error instanceof errors.JOSEError) {
    return mgError('MG_JWKS_UNAVAILABLE', `${prefix}: it did not return a usable JWKS (${error.code}: ${error.message})`, error);
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const hint = code !== undefined && TLS_CODES.has(code) ? '; set jwks.caFile to the CA that issued its certificate' : '; check that it is running and reachable';
  return mgError('MG_JWKS_UNAVAILABLE', `${prefix}: ${code ?? 'request failed'}${hint}`, error);
}

function isKeyMismatch(error: unknown): boolean {
  return error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys;
}

async function remoteSource(issuer: string, jwks: RemoteJwksConfig): Promise<KeySource> {
  let ca: string | undefined;
  if (jwks.caFile !== undefined) {
    try {
      ca = await readFile(jwks.caFile, 'utf8');
    } catch (error) {
      throw mgError('MG_CONFIG_INVALID', `jwks.caFile of ${issuer}: cannot read ${jwks.caFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error);
    }
  }
  const remote = createRemoteJWKSet(new URL(jwks.url), {
    timeoutDuration: jwks.timeoutMs,
    cooldownDuration: jwks.cooldownMs,
    cacheMaxAge: jwks.cacheMaxAgeSeconds * 1000,
    [customFetch]: nodeFetch(ca),
  });
  return {
    where: jwks.url,
    cooldownMs: jwks.cooldownMs,
    getKey: async (header, token) => {
      try {
        return await remote(header, token);
      } catch (error) {
        if (isMeshgateError(error) || isKeyMismatch(error)) throw error;
        throw unavailable(issuer, jwks, error);
      }
    },
  };
}

/** Checks a JWKS file: public keys only, so a leaked private key in config is caught early. */
function checkFileJwks(issuer: string, file: string, value: unknown): JSONWebKeySet {
  const bad = (why: string) => mgError('MG_CONFIG_INVALID', `jwks.file of ${issuer}: ${file} ${why}`);
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { keys?: unknown }).keys)) {
    throw bad('is not a JWKS (a JSON object with a "keys" array)');
  }
  const keys = (value as { keys: unknown[] }).keys;
  if (keys.length === 0) throw bad('has no keys');
  for (const [i, key] of keys.entries()) {
    if (typeof key !== 'object' || key === null) throw bad(`key ${i} is not an object`);
    if ('d' in key || 'k' in key) throw bad(`key ${i} is a private or symmetric key; publish only public keys and keep the private key secret`);
  }
  return value as JSONWebKeySet;
}

async function fileSource(issuer: string, file: string): Promise<KeySource> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `jwks.file of ${issuer}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw mgError('MG_CONFIG_INVALID', `jwks.file of ${issuer}: ${file} is not valid JSON`);
  }
  let local: ReturnType<typeof createLocalJWKSet>;
  try {
    local = createLocalJWKSet(checkFileJwks(issuer, file, json));
  } catch (error) {
    if (isMeshgateError(error)) throw error;
    throw mgError('MG_CONFIG_INVALID', `jwks.file of ${issuer}: ${file} is not a usable JWKS (${(error as Error).message})`, error);
  }
  return {
    where: file,
    cooldownMs: null,
    getKey: async (header, token) => {
      try {
        return await local(header, token);
      } catch (error) {
        if (isKeyMismatch(error)) throw error;
        throw mgError('MG_JWKS_UNAVAILABLE', `a key in ${file} (JWKS of ${issuer}) cannot be used: ${(error as Error).message}`, error);
      }
    },
  };
}

/** Builds the key source for one issuer; reads files now, so a bad path fails at startup. */
export function createKeySource(issuer: string, jwks: JwksConfig): Promise<KeySource> {
  return 'url' in jwks ? remoteSource(issuer, jwks) : fileSource(issuer, jwks.file);
}
