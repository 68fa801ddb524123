/**
 * The Firestore meshgate forwards to: the emulator in development (plaintext HTTP/2, the
 * emulator's `owner` token), or Google's endpoint in production (TLS, a short-lived OAuth
 * token for the Google service account policy maps the caller to). One HTTP/2 connection,
 * reopened when it closes; every call is a stream on it.
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { UpstreamAuth } from '../../credentials/index.ts';
import { mgError } from '../../errors/index.ts';

export interface FirestoreUpstreamOptions {
  /** `http://127.0.0.1:8080` (emulator) or `https://firestore.googleapis.com`. */
  readonly url: string;
  readonly auth: UpstreamAuth;
  readonly connectTimeoutMs?: number;
}

export class FirestoreUpstream {
  private session: ClientHttp2Session | null = null;
  private readonly authority: string;

  constructor(private readonly options: FirestoreUpstreamOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw mgError('MG_CONFIG_INVALID', `firestore.upstream ${options.url} must be http:// (emulator) or https:// (Google)`);
    }
    this.authority = url.host;
  }

  get auth(): UpstreamAuth {
    return this.options.auth;
  }

  /** Opens a call; `headers` are the caller's, already stripped of its credentials. */
  open(path: string, headers: OutgoingHttpHeaders, authorization: string): ClientHttp2Stream {
    const session = this.currentSession();
    return session.request({
      ...headers,
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: `/${path}`,
      [constants.HTTP2_HEADER_AUTHORITY]: this.authority,
      authorization,
    });
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }

  private currentSession(): ClientHttp2Session {
    if (this.session !== null && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.options.url, { settings: { enablePush: false } });
    // Failures surface on the streams that use the session; the next call reconnects.
    session.on('error', () => {});
    session.once('close', () => {
      if (this.session === session) this.session = null;
    });
    session.once('goaway', () => {
      if (this.session === session) this.session = null;
    });
    session.unref();
    this.session = session;
    return session;
  }
}
