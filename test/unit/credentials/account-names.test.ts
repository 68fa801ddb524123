import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  accountNameFor,
  identitySlug,
  MANAGED_USER_PREFIX,
  MAX_USER_NAME_LENGTH,
  randomLeaseSuffix,
  randomPassword,
} from '../../../src/credentials/account-names.ts';

const NAME = /^mg-[a-z0-9._-]*-[a-z2-7]{8}$/;
const suffixArb = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567'), minLength: 8, maxLength: 8 });
const principalArb = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.tuple(fc.domain(), fc.string(), fc.string()).map(([td, ns, sa]) => `spiffe://${td}/ns/${ns}/sa/${sa}`),
  fc.emailAddress().map((email) => `oidc:${email}`),
);

describe('accountNameFor', () => {
  test('slugs the common principal forms readably', () => {
    assert.equal(accountNameFor('spiffe://prod.example/ns/payments/sa/orders-api', 'abcdefgh'), 'mg-payments.orders-api-abcdefgh');
    assert.equal(accountNameFor('github:repo:acme/api:ref:refs/heads/main', 'abcdefgh'),
      'mg-github.repo.acme.api.ref.refs.heads.main-abcdefgh');
    assert.equal(accountNameFor('oidc:Alice@Example.com', 'abcdefgh'), 'mg-oidc.alice.example.com-abcdefgh');
    assert.equal(identitySlug('spiffe://prod.example/region/eu/web'), 'region.eu.web');
    assert.equal(identitySlug('oidc:jürgen müller'), 'oidc.jurgen.muller');
  });

  test('truncates the slug, never the suffix, to stay within the user name limit', () => {
    const name = accountNameFor(`spiffe://td/ns/${'n'.repeat(100)}/sa/${'s'.repeat(100)}`, 'zzzzzzzz');
    assert.equal(name.length, MAX_USER_NAME_LENGTH);
    assert.ok(name.endsWith('-zzzzzzzz'));
    assert.ok(name.startsWith(`${MANAGED_USER_PREFIX}nnnn`));
  });

  test('an identity with nothing readable still gets a valid name', () => {
    assert.equal(accountNameFor('///:::', 'abcdefgh'), 'mg-unnamed-abcdefgh');
    assert.equal(accountNameFor('', 'abcdefgh'), 'mg-unnamed-abcdefgh');
  });

  test('rejects suffixes that could collide or need quoting', () => {
    assert.throws(() => accountNameFor('oidc:a', ''), TypeError);
    assert.throws(() => accountNameFor('oidc:a', 'ABC'), TypeError);
    assert.throws(() => accountNameFor('oidc:a', "x'y"), TypeError);
  });

  test('property: any principal gives a bounded name of the managed shape', () => {
    fc.assert(fc.property(principalArb, suffixArb, (principal, suffix) => {
      const name = accountNameFor(principal, suffix);
      assert.ok(name.length <= MAX_USER_NAME_LENGTH, name);
      assert.match(name, NAME);
      assert.ok(name.endsWith(`-${suffix}`));
    }), { numRuns: 2000 });
  });

  test('property: distinct suffixes give distinct names', () => {
    fc.assert(fc.property(principalArb, suffixArb, suffixArb, (principal, a, b) => {
      fc.pre(a !== b);
      assert.notEqual(accountNameFor(principal, a), accountNameFor(principal, b));
    }), { numRuns: 1000 });
  });
});

describe('random material', () => {
  test('lease suffixes are 8 base32 characters and do not repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const suffix = randomLeaseSuffix();
      assert.match(suffix, /^[a-z2-7]{8}$/);
      seen.add(suffix);
    }
    assert.equal(seen.size, 2000);
    assert.match(accountNameFor('oidc:a', randomLeaseSuffix()), NAME);
  });

  test('passwords are 256-bit base64url strings', () => {
    const password = randomPassword();
    assert.match(password, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(password, 'base64url').length, 32);
    assert.notEqual(randomPassword(), password);
  });
});
