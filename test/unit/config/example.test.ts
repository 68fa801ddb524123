import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { configSchema } from '../../../src/config/schema.ts';
import { loadPolicyDir } from '../../../src/policy/index.ts';

describe('deploy/examples', () => {
  it('meshgate.yaml matches the config schema', () => {
    const raw = parse(readFileSync(new URL('../../../deploy/examples/meshgate.yaml', import.meta.url), 'utf8'));
    const parsed = configSchema.safeParse(raw);
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  });

  it('meshgate-firestore.yaml matches the config schema and turns on Firestore alone', () => {
    const raw = parse(readFileSync(new URL('../../../deploy/examples/meshgate-firestore.yaml', import.meta.url), 'utf8'));
    const parsed = configSchema.safeParse(raw);
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    assert.equal(parsed.data.listener, undefined);
    assert.equal(parsed.data.upstream, undefined);
    assert.equal(parsed.data.firestore?.tls, 'mtls');
  });

  it("grants the admin account the roles its example policy maps to", async () => {
    const text = readFileSync(new URL('../../../deploy/examples/meshgate.yaml', import.meta.url), 'utf8');
    const raw = parse(text) as { upstream: { credentials?: unknown } };
    assert.ok(raw.upstream.credentials !== undefined, 'the example uses dynamic credentials, the recommended way');
    const granted = /GRANT ([\w, ]+) TO meshgate_admin WITH ADMIN OPTION/.exec(text)?.[1]?.split(/,\s*/) ?? [];
    const policy = await loadPolicyDir(new URL('../../../deploy/examples/policy', import.meta.url).pathname);
    const subject = { spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'orders', principal: 'cluster.local/ns/shop/sa/orders' };
    const decision = policy.evaluate(subject, { engine: 'mysql', database: 'shop' });
    assert.equal(decision.allow, true);
    assert.ok(decision.role !== null && granted.includes(decision.role), `the admin may grant role ${decision.role}`);
  });
});
