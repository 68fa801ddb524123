/**
 * Contract test of the production token path: what meshgate asks Google's IAM Credentials
 * API for (the mapped service account, the datastore scope, a bounded lifetime, with its
 * own credentials), and what it does with the answer. A local server stands in for
 * iamcredentials.googleapis.com; the real endpoint cannot be reached from here.
 */
import diagnostics from 'node:diagnostics_channel';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OAuth2Client } from 'google-auth-library';
import { DATASTORE_SCOPE, googleUpstreamAuth, TOKEN_FETCH_CHANNEL } from '../../../src/credentials/google.ts';

interface Seen {
  readonly url: string;
  readonly authorization: string | undefined;
  readonly body: { scope: string[]; lifetime: string; delegates?: string[] };
}

let server: Server;
let endpoint: string;
const seen: Seen[] = [];
let refuse = false;

before(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization, body: JSON.parse(text) as Seen['body'] });
      if (refuse) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 403, message: 'Permission iam.serviceAccounts.getAccessToken denied', status: 'PERMISSION_DENIED' } }));
        return;
      }
      const expireTime = new Date(Date.now() + 3600_000).toISOString();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accessToken: `token-for-${seen.length}`, expireTime }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function meshgateOwnCredentials(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'meshgate-own-token', expiry_date: Date.now() + 3600_000 });
  return client;
}

test('asks IAM Credentials for a datastore-scoped token of the mapped service account, with meshgate’s own credentials', async () => {
  seen.length = 0;
  let clock = Date.now();
  const auth = googleUpstreamAuth({ sourceClient: meshgateOwnCredentials(), endpoint, lifetimeSeconds: 900, now: () => clock });
  const header = await auth.authorization('orders-reader@proj.iam.gserviceaccount.com');
  assert.equal(header, 'Bearer token-for-1');
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.url, '/v1/projects/-/serviceAccounts/orders-reader@proj.iam.gserviceaccount.com:generateAccessToken');
  assert.equal(seen[0]!.authorization, 'Bearer meshgate-own-token');
  assert.deepEqual(seen[0]!.body.scope, [DATASTORE_SCOPE]);
  assert.equal(seen[0]!.body.lifetime, '900s');

  // Cached until five minutes before expiry; concurrent callers share one request.
  await Promise.all([auth.authorization('orders-reader@proj.iam.gserviceaccount.com'), auth.authorization('orders-reader@proj.iam.gserviceaccount.com')]);
  assert.equal(seen.length, 1);
  clock += 56 * 60_000;
  assert.equal(await auth.authorization('orders-reader@proj.iam.gserviceaccount.com'), 'Bearer token-for-2');
  // Another service account is another token.
  assert.equal(await auth.authorization('analytics@proj.iam.gserviceaccount.com'), 'Bearer token-for-3');
});

test('a refusal from Google names the service account and what to grant', async () => {
  refuse = true;
  try {
    const auth = googleUpstreamAuth({ sourceClient: meshgateOwnCredentials(), endpoint });
    await assert.rejects(auth.authorization('nope@proj.iam.gserviceaccount.com'), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MG_UPSTREAM_AUTH_FAILED');
      assert.match(error.message, /nope@proj\.iam\.gserviceaccount\.com.*serviceAccountTokenCreator/);
      assert.ok(!error.message.includes('meshgate-own-token'));
      return true;
    });
  } finally {
    refuse = false;
  }
});

test('a rule without a service account cannot reach Google', async () => {
  const auth = googleUpstreamAuth({ sourceClient: meshgateOwnCredentials(), endpoint });
  await assert.rejects(auth.authorization(null), /to\.firestore\.serviceAccount/);
});

test('publishes each mint’s outcome for metrics', async () => {
  const outcomes: string[] = [];
  const listener = (message: unknown) => void outcomes.push((message as { outcome: string }).outcome);
  diagnostics.subscribe(TOKEN_FETCH_CHANNEL, listener);
  try {
    const auth = googleUpstreamAuth({ sourceClient: meshgateOwnCredentials(), endpoint });
    await auth.authorization('metrics-ok@proj.iam.gserviceaccount.com');
    refuse = true;
    await assert.rejects(auth.authorization('metrics-refused@proj.iam.gserviceaccount.com'), /MG_UPSTREAM_AUTH_FAILED|cannot get a Firestore token/);
  } finally {
    refuse = false;
    diagnostics.unsubscribe(TOKEN_FETCH_CHANNEL, listener);
  }
  assert.deepEqual(outcomes, ['success', 'failure']);
});
