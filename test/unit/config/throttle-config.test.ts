/**
 * The `throttle` section: what a valid one becomes (defaults, durations in ms), and the
 * problems an operator reads for settings that cannot work: a default class that is not
 * defined, a burst below 1, reserved shares beyond the budget, an identity limit above its
 * class's, each with its path, line and fix.
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
`;
const LINE0 = BASE.split('\n').length - 1;

describe('config: throttle', () => {
  let dir: string;
  let file: string;
  const load = (section: string) => parseConfigText(BASE + section, file);
  const problem = (section: string) => {
    try {
      load(section);
    } catch (error) {
      assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
      return error.message.replaceAll(`${file}: `, '');
    }
    assert.fail('expected MG_CONFIG_INVALID');
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-throttle-config-'));
    file = join(dir, 'meshgate.yaml');
    await mkdir(join(dir, 'tls'));
    await mkdir(join(dir, 'policy'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) await writeFile(join(dir, 'tls', f), 'x');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('absent: no throttle at all', () => {
    assert.equal(load('').throttle, undefined);
  });

  it('a full section compiles to numbers: bursts defaulted, durations in ms, refuse by default', () => {
    const config = load(`throttle:
  defaultClass: standard
  classes:
    standard: { rate: { perSecond: 100 }, concurrency: 50, perIdentity: { rate: { perSecond: 2.5 }, sessions: 5 } }
    batch: { priority: -10, sessions: 20, overLimit: { wait: { queue: 100, timeout: 250ms } } }
    critical: { priority: 100, perIdentity: {} }
  upstream: { connections: 100, reserved: { critical: 20 }, roles: { shop_writer: 50 } }
`);
    const settings = throttleSettings(config.throttle!);
    assert.equal(settings.defaultClass, 'standard');
    assert.deepEqual(settings.classes.get('standard'), {
      name: 'standard',
      priority: 0,
      rate: { perSecond: 100, burst: 100 },
      concurrency: 50,
      sessions: null,
      logins: null,
      perIdentity: { rate: { perSecond: 2.5, burst: 3 }, concurrency: null, sessions: 5, logins: null },
      overLimit: 'refuse',
    });
    assert.deepEqual(settings.classes.get('batch')?.overLimit, { wait: { queue: 100, timeoutMs: 250 } });
    assert.equal(settings.classes.get('critical')?.perIdentity, null, 'an empty perIdentity keeps no identity state');
    assert.deepEqual(settings.upstream, { connections: 100, reserved: { critical: 20 }, roles: { shop_writer: 50 } });
  });

  const cases: [string, string, string][] = [
    [
      'a default class that is not defined',
      'throttle:\n  defaultClass: standard\n  classes:\n    batch: {}\n    critical: { priority: 10 }\n',
      `throttle.defaultClass: the default class "standard" is not under throttle.classes (defined: batch, critical): define it there, or name one of them as defaultClass (line ${LINE0 + 2}, column 3)`,
    ],
    [
      'the implicit default class missing from an empty section',
      'throttle:\n  classes: {}\n',
      `throttle.defaultClass: the default class "default" is not under throttle.classes (none is defined): define it there, or name one of them as defaultClass (line ${LINE0 + 1}, column 1)`,
    ],
    [
      'a burst below 1',
      'throttle:\n  classes:\n    default: { rate: { perSecond: 10, burst: 0 } }\n',
      `throttle.classes.default.rate.burst: a burst of at least 1: with less, not even one statement could ever pass (line ${LINE0 + 3}, column 39)`,
    ],
    [
      'a zero timeout',
      'throttle:\n  classes:\n    default: { overLimit: { wait: { queue: 10, timeout: 0ms } } }\n',
      `throttle.classes.default.overLimit.wait.timeout: a timeout longer than zero; for no wait, write overLimit: refuse (line ${LINE0 + 3}, column 48)`,
    ],
    [
      'a timeout without a unit',
      'throttle:\n  classes:\n    default: { overLimit: { wait: { queue: 10, timeout: 2 } } }\n',
      `throttle.classes.default.overLimit.wait.timeout: expected a duration: a whole number and one unit, ms, s or m (e.g. 250ms, 2s, 1m), got the number 2 (line ${LINE0 + 3}, column 48)`,
    ],
    [
      'an overLimit that is neither form',
      'throttle:\n  classes:\n    default: { overLimit: wait }\n',
      `throttle.classes.default.overLimit: expected 'refuse', or { wait: { queue: 100, timeout: 2s } }, got the string "wait" (line ${LINE0 + 3}, column 16)`,
    ],
    [
      'a class name that cannot be a metric label',
      'throttle:\n  classes:\n    default: {}\n    Batch: {}\n',
      `throttle.classes.Batch: not allowed as a name here: expected a service class name: a lower-case letter, then up to 62 lower-case letters, digits, _ and -, got the string "Batch" (line ${LINE0 + 4}, column 5)`,
    ],
    [
      'an identity limit above its class',
      'throttle:\n  classes:\n    default: { concurrency: 5, perIdentity: { concurrency: 8 } }\n',
      `throttle.classes.default.perIdentity.concurrency: 8 per identity is above the class's own concurrency of 5: it could never be reached; lower it, or raise throttle.classes.default.concurrency (line ${LINE0 + 3}, column 47)`,
    ],
    [
      'a misspelt key',
      'throttle:\n  classes:\n    default: { prio: 3 }\n',
      `throttle.classes.default.prio: unknown key; allowed here: priority, rate, concurrency, sessions, logins, perIdentity, overLimit (line ${LINE0 + 3}, column 16)`,
    ],
  ];
  for (const [what, section, expected] of cases) {
    it(`names ${what}`, () => assert.equal(problem(section), expected));
  }

  it('names every budget problem: reserves beyond the budget, for an unknown class, a role cap above it', () => {
    const text = problem('throttle:\n  classes:\n    default: {}\n    critical: { priority: 100 }\n  upstream:\n    connections: 10\n    reserved: { critical: 8, batch: 5 }\n    roles: { shop: 20 }\n');
    assert.equal(
      text,
      [
        '3 problems in the configuration:',
        `throttle.upstream.reserved: the reserved shares add up to 13 connections, more than the budget of 10 (throttle.upstream.connections): lower them or raise the budget (line ${LINE0 + 7}, column 5)`,
        `throttle.upstream.reserved.batch: "batch" is not a class under throttle.classes (defined: default, critical): reserve connections for a defined class (line ${LINE0 + 7}, column 30)`,
        `throttle.upstream.roles.shop: a cap of 20 connections is above the whole budget of 10: it could never be reached; lower it or raise throttle.upstream.connections (line ${LINE0 + 8}, column 14)`,
      ].join('\n  '),
    );
  });
});
