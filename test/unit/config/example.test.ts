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

  it('names only roles its example policy uses', async () => {
    const raw = parse(readFileSync(new URL('../../../deploy/examples/meshgate.yaml', import.meta.url), 'utf8')) as { upstream: { roles: Record<string, unknown> } };
    const policy = await loadPolicyDir(new URL('../../../deploy/examples/policy', import.meta.url).pathname);
    const subject = { spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'orders', principal: 'cluster.local/ns/shop/sa/orders' };
    const decision = policy.evaluate(subject, { engine: 'mysql', database: 'shop' });
    assert.equal(decision.allow, true);
    assert.ok(decision.role !== null && decision.role in raw.upstream.roles, `role ${decision.role} has an account`);
  });
});
