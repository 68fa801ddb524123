/**
 * `throttle.shared.redis`: what a valid one becomes (defaults, the timeout in ms, the URL left
 * a secret reference for readSecret), and the problems an operator reads, each with path, line
 * and fix. A password written into the YAML is refused.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfigText } from '../../../src/config/load.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { throttleSettings } from '../../../src/throttle/index.ts';

const BASE = `listener:
  port: 3307
  tls:
    cert: tls/server.crt
    key: tls/server.key
trust:
  bundles: [tls/bundle.pem]
  trustDomains: [cluster.local]
upstream:
  roles:
    shop_writer:
      user: mg_shop_writer
      password: { env: SHOP_WRITER_PASSWORD }
policy: { dir: policy }
throttle:
  classes: { default: { rate: { perSecond: 100 } } }
`;
const LINE = BASE.split('\n').length;

describe('config: throttle.shared', () => {
  let dir: string;
  let file: string;
  const load = (shared: string) => parseConfigText(`${BASE}  ${shared}\n`, file);
  const problem = (shared: string) => {
    try {
      load(shared);
    } catch (error) {
      assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
      return error.message.replaceAll(`${file}: `, '');
    }
    assert.fail('expected MG_CONFIG_INVALID');
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-throttle-shared-'));
    file = join(dir, 'meshgate.yaml');
    await mkdir(join(dir, 'tls'));
    await mkdir(join(dir, 'policy'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) await writeFile(join(dir, 'tls', f), 'x');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('absent: every replica limits on its own', () => {
    assert.equal(throttleSettings(parseConfigText(BASE, file).throttle!).shared, null);
  });

  it('a secret reference, with the defaults: prefix meshgate:throttle:, timeout 50 ms', () => {
    const settings = throttleSettings(load('shared: { redis: { url: { env: REDIS_URL } } }').throttle!);
    assert.deepEqual(settings.shared, { url: { env: 'REDIS_URL' }, keyPrefix: 'meshgate:throttle:', timeoutMs: 50 });
  });

  it('a plain URL without a password, a prefix and a timeout of its own', () => {
    const settings = throttleSettings(load('shared: { redis: { url: "redis://redis.infra:6379", keyPrefix: "fleet-a:", timeout: 20ms } }').throttle!);
    assert.deepEqual(settings.shared, { url: 'redis://redis.infra:6379', keyPrefix: 'fleet-a:', timeoutMs: 20 });
  });

  const cases: [string, string, string][] = [
    [
      'a URL that is not Redis',
      'shared: { redis: { url: "http://x:1" } }',
      `throttle.shared.redis.url: expected a Redis URL, redis://host:port or rediss://host:port (TLS); with a password, put the URL in { env: VARIABLE } or { file: PATH }, got the string "http://x:1" (line ${LINE}, column 22)`,
    ],
    [
      'a password in the YAML',
      'shared: { redis: { url: "redis://:hunter2@x:1" } }',
      `throttle.shared.redis.url: a Redis URL without credentials: put a URL with a password in { env: VARIABLE } or { file: PATH } (line ${LINE}, column 22)`,
    ],
    [
      'a timeout over 10 s',
      'shared: { redis: { url: "redis://x:1", timeout: 11s } }',
      `throttle.shared.redis.timeout: a timeout from 1ms to 10s: longer would hold statements waiting on Redis (line ${LINE}, column 42)`,
    ],
    [
      'a prefix with a space',
      'shared: { redis: { url: "redis://x:1", keyPrefix: "a b" } }',
      `throttle.shared.redis.keyPrefix: expected a Redis key prefix: 1 to 64 letters, digits and : _ . -, e.g. meshgate:throttle:, got the string "a b" (line ${LINE}, column 42)`,
    ],
    [
      'no URL',
      'shared: { redis: {} }',
      `throttle.shared.redis.url: required: a Redis URL, redis://host:port or rediss://host:port (TLS); with a password, put the URL in { env: VARIABLE } or { file: PATH } (line ${LINE}, column 13)`,
    ],
  ];
  for (const [what, shared, expected] of cases) it(`names ${what}`, () => assert.equal(problem(shared), expected));

  it('no redis under shared says what to write', () => {
    assert.match(problem('shared: {}'), /^throttle\.shared\.redis: required: the Redis every replica shares: \{ url: \{ env: REDIS_URL \} \}/);
  });
});
