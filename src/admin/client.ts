/**
 * A client of the admin API, for `meshgate creds ... --server URL`: HTTPS with meshgate's
 * CA (`--ca`) and, for admin routes, a client certificate. An error answer becomes the
 * MeshgateError the server named, so the CLI prints the same `[CODE] message` either way.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { ERROR_CODES, mgError, type ErrorCode } from '../errors/index.ts';
import { readUpTo } from '../transport/http/index.ts';
import { MAX_ADMIN_BODY_BYTES } from './http.ts';

const TIMEOUT_MS = 30_000;
/** Answers are small; a bound keeps a wrong --server from filling memory. */
const MAX_ANSWER_BYTES = 4 * MAX_ADMIN_BODY_BYTES;

export interface AdminClientOptions {
  /** `https://host:port` of meshgate's admin API. */
  readonly server: string;
  /** PEM files: the bundle that signs meshgate's certificate, and the caller's certificate and key. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface AdminRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: unknown;
  /** Sent as Authorization: Bearer; never printed. */
  readonly token?: string;
}

async function readPem(path: string | undefined, flag: string): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', `${flag}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function serverUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw mgError('MG_USAGE', `--server ${JSON.stringify(text)} is not a URL; give https://<host>:<admin.port>`);
  }
  if (url.protocol !== 'https:') throw mgError('MG_USAGE', `--server must be an https:// URL (the admin API speaks HTTPS only), not ${url.protocol}`);
  return url;
}

export async function adminRequest(options: AdminClientOptions, request: AdminRequest): Promise<unknown> {
  const base = serverUrl(options.server);
  const url = new URL(request.path, base);
  const [ca, cert, key] = await Promise.all([readPem(options.ca, '--ca'), readPem(options.cert, '--cert'), readPem(options.key, '--key')]);
  if ((cert === undefined) !== (key === undefined)) throw mgError('MG_USAGE', '--cert and --key go together');
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: request.method,
        ...(ca === undefined ? {} : { ca }),
        ...(cert === undefined ? {} : { cert, key }),
        timeout: TIMEOUT_MS,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
          ...(request.token === undefined ? {} : { authorization: `Bearer ${request.token}` }),
        },
      },
      (res) => {
        const tooLarge = () => mgError('MG_UPSTREAM_PROTOCOL', `${base.origin} answered with more than ${MAX_ANSWER_BYTES} bytes; is --server meshgate's admin API?`);
        readUpTo(res, MAX_ANSWER_BYTES, tooLarge, () => res.destroy()).then((answer) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(answer.toString('utf8'));
          } catch {
            reject(mgError('MG_UPSTREAM_PROTOCOL', `${base.origin} answered HTTP ${res.statusCode} without JSON; is --server meshgate's admin API?`));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed);
          const error = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
          const code = typeof error?.code === 'string' && Object.hasOwn(ERROR_CODES, error.code) ? (error.code as ErrorCode) : 'MG_INTERNAL';
          const message = typeof error?.message === 'string' ? error.message : `the admin API answered HTTP ${status}`;
          reject(mgError(code, message));
        }, reject);
      },
    );
    req.on('timeout', () => req.destroy(mgError('MG_UPSTREAM_UNAVAILABLE', `${base.origin} did not answer within ${TIMEOUT_MS / 1000} s; check --server and that meshgate is running`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      if ((error as { code?: string }).code?.startsWith('MG_')) return reject(error);
      const code = error.code ?? 'error';
      const tls = /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS/.test(code);
      reject(
        mgError(
          'MG_CONFIG_INVALID',
          tls
            ? `the certificate of ${base.origin} does not verify (${code}); pass --ca with the bundle that signed meshgate's certificate`
            : `cannot reach the admin API at ${base.origin} (${code}); check --server and that meshgate runs with an admin section`,
          error,
        ),
      );
    });
    req.end(body);
  });
}
