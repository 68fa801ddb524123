/** Invariant 2 on the Firestore hop: the caller's credentials never travel upstream. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardedHeaders, responseHeaders } from '../../../src/engines/firestore/headers.ts';

test("the caller's token, cookie, XFCC and hop headers stay with meshgate; gRPC metadata goes on", () => {
  const out = forwardedHeaders({
    ':method': 'POST',
    ':path': '/google.firestore.v1.Firestore/GetDocument',
    authorization: 'Bearer caller-secret',
    cookie: 'session=caller-secret',
    'x-forwarded-client-cert': 'By=x;URI=spiffe://a/ns/b/sa/c',
    connection: 'keep-alive',
    'content-type': 'application/grpc',
    te: 'trailers',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    'google-cloud-resource-prefix': 'projects/p/databases/(default)',
  });
  assert.deepEqual(Object.keys(out).sort(), ['content-type', 'google-cloud-resource-prefix', 'te', 'traceparent']);
  assert.ok(!JSON.stringify(out).includes('caller-secret'));
});

test('answers keep their status and metadata, never pseudo-headers other than :status', () => {
  const out = responseHeaders({ ':status': 200 as unknown as string, 'content-type': 'application/grpc', 'x-goog-meta': 'v' });
  assert.deepEqual(out, { ':status': 200, 'content-type': 'application/grpc', 'x-goog-meta': 'v' });
});
