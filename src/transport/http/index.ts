/**
 * HTTPS as meshgate's own endpoints (the admin API, the certificate-signing endpoint) speak
 * it: a TCP listener that terminates TLS per connection with the latest certificates, and
 * JSON bodies and statuses rendered from error kinds.
 */
export { listenTlsPerConnection, type Listening, type TlsListenerOptions } from './tls-listener.ts';
export { readBody, readUpTo, sendError, sendJson, statusOf, type BodyLimit, type StatusExceptions } from './json.ts';
