/**
 * Whatever is wrong with a configuration, the operator reads meshgate's words: random
 * mutations of a full valid config never surface zod's stock phrases, and every problem
 * names the file and, when the field or a parent is written in it, the line.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { parseConfigText, resolveConfig } from '../../../src/config/load.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

const FULL = `
listener:
  host: 0.0.0.0
  port: 3307
  tls: { mode: starttls, required: true, cert: tls/server.crt, key: tls/server.key }
  maxClientMessageBytes: 67108864
trust:
  bundles: [tls/bundle.pem]
  trustDomains: [cluster.local]
upstream:
  host: db
  port: 3306
  connectTimeoutMs: 5000
  roles:
    shop_reader: { user: mg_shop_reader, password: { env: SHOP_READER_PASSWORD } }
  credentials:
    admin: { user: meshgate_admin, password: { file: secrets/admin } }
    userHost: "%"
    sessionTtl: 1h
    sessionMaxTtl: 24h
    issuedTtl: 15m
    issuedMaxTtl: 1h
    rotateAdminEvery: 24h
    sweepInterval: 30s
  pool: { maxIdlePerKey: 16, idleTimeout: 5m }
state:
  postgres: { url: { env: MESHGATE_STATE_URL }, schema: meshgate }
  replicaId: replica-a
firestore:
  host: 0.0.0.0
  port: 8443
  tls: mtls
  trustedHops: [127.0.0.6]
  project: shop-prod
  upstream: { google: { endpoint: "https://firestore.googleapis.com" } }
  maxMessageBytes: 16777216
admin:
  port: 9440
  principals: ["spiffe://cluster.local/ns/platform/sa/operator"]
policy: { dir: policy }
tokens:
  issuers:
    - issuer: https://kubernetes.default.svc
      audiences: [meshgate]
      jwks: { url: "https://kubernetes.default.svc/openid/v1/jwks", caFile: ca.crt, timeoutMs: 2000 }
      algorithms: [RS256, ES256]
      mapping: { kind: oidc, subjectClaim: email, groupsClaim: groups }
      trustDomain: cluster.local
    - issuer: https://token.actions.githubusercontent.com
      audiences: [meshgate]
      jwks: { file: jwks.json }
      mapping: { kind: github-actions }
      trustDomain: ci.example
signer: { caDir: ca, svidTtlSeconds: 14400, joinTokens: true, issuancesPerMinute: 10 }
audit: { file: audit.jsonl, tagStatements: true, highWaterEvents: 10000 }
`;

/** zod's English messages; none may reach an operator. Quoted values are removed first. */
const ZOD_PHRASES = [
  'Invalid input',
  'expected object, received',
  'received undefined',
  'Unrecognized key',
  'Invalid option',
  'Invalid discriminator',
  'Invalid string',
  'Invalid URL',
  'Invalid key in record',
  'Invalid element',
  'Too small',
  'Too big',
  'expected string, received',
  'expected number, received',
  '>=',
  '<=',
  '[object Object]',
  'undefined',
];

type Container = Record<string, unknown> | unknown[];
type Slot = { parent: Container; key: string | number; depth: number };

function slots(value: unknown, depth = 0): Slot[] {
  if (typeof value !== 'object' || value === null) return [];
  const parent = value as Container;
  const keys: (string | number)[] = Array.isArray(parent) ? parent.map((_, i) => i) : Object.keys(parent);
  return keys.flatMap((key) => [{ parent, key, depth }, ...slots((parent as Record<string | number, unknown>)[key], depth + 1)]);
}

const anyValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -100_000, max: 100_000_000 }),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constant('hunter2'),
  fc.constant({}),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);

const mutation = fc.record({
  pick: fc.nat(),
  kind: fc.constantFrom('delete', 'replace', 'rename', 'add', 'typo'),
  value: anyValue,
  key: fc.string({ minLength: 1, maxLength: 10 }),
});
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

/** A one-letter slip: a dropped, doubled or swapped letter, as people mistype keys. */
function typo(key: string, n: number): string {
  if (key.length < 2) return `${key}${key}`;
  const i = n % (key.length - 1);
  switch (n % 3) {
    case 0:
      return key.slice(0, i) + key.slice(i + 1);
    case 1:
      return key.slice(0, i) + key[i] + key.slice(i);
    default:
      return key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
  }
}

function mutate(config: unknown, m: Mutation): void {
  const all = slots(config);
  const slot = all[m.pick % all.length]!;
  const parent = slot.parent as Record<string | number, unknown>;
  const renameTo = (to: string) => {
    if (Array.isArray(slot.parent) || to === slot.key) return;
    parent[to] = parent[slot.key];
    delete parent[slot.key];
  };
  switch (m.kind) {
    case 'delete':
      if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
      else delete parent[slot.key];
      return;
    case 'replace':
      parent[slot.key] = structuredClone(m.value);
      return;
    case 'rename':
      return renameTo(m.key);
    case 'typo':
      return renameTo(typo(String(slot.key), m.pick));
    case 'add': {
      const target = parent[slot.key];
      if (typeof target === 'object' && target !== null && !Array.isArray(target)) (target as Record<string, unknown>)[m.key] = m.value;
      else parent[slot.key] = { [m.key]: m.value };
    }
  }
}

const QUOTED = /"(?:[^"\\]|\\.)*"/g;

function problemLines(message: string): string[] {
  return message.split('\n  ').filter((line) => !/^\d+ problems in the configuration:$/.test(line) && !/^\.\.\. and \d+ more$/.test(line));
}

describe('config errors never speak zod', () => {
  let dir: string;
  let file: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-config-fuzz-'));
    file = join(dir, 'meshgate.yaml');
    await mkdir(join(dir, 'tls'));
    await mkdir(join(dir, 'policy'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) await writeFile(join(dir, 'tls', f), 'x');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('the full configuration the mutations start from is valid', () => {
    assert.equal(parseConfigText(FULL, file).firestore?.project, 'shop-prod');
  });

  it('random mutations give messages with the file, a line where there is one, and no zod text', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const config = parse(FULL) as unknown;
        for (const m of mutations) mutate(config, m);
        for (const [fromText, run] of [
          [true, () => parseConfigText(stringify(config), file)],
          [false, () => resolveConfig(structuredClone(config), file)],
        ] as const) {
          let message: string;
          try {
            run();
            continue;
          } catch (error) {
            assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
            message = error.message;
          }
          const words = message.replace(QUOTED, '""');
          for (const phrase of ZOD_PHRASES) assert.ok(!words.includes(phrase), `${JSON.stringify(phrase)} in:\n${message}`);
          for (const line of problemLines(message)) {
            assert.ok(line.startsWith(`${file}: `), `no file in: ${line}`);
            const placed = / \(line \d+, column \d+\)$/.test(line);
            if (!fromText) {
              assert.ok(!placed, `a line number without a file: ${line}`);
            } else if (!placed) {
              // Only a top-level section that is nowhere in the file has no line, or the
              // file as a whole (no engine left in it).
              assert.match(line.slice(file.length + 2), /^([A-Za-z]+: required: |configure at least one engine: )/, `no line in: ${line}`);
            }
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});
