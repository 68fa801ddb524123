/**
 * Config errors read like policy errors: file, field path, line and column, what is allowed
 * and the fix, one problem per line in document order; never zod's own wording.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closest } from '../../../src/config/describe.ts';
import { parseConfigText, resolveConfig } from '../../../src/config/load.ts';
import { MAX_REPORTED, formatPath } from '../../../src/config/report.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';

const VALID = `listener:
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

/** The Firestore engine alone: no listener, no upstream, no MariaDB anywhere. */
const FIRESTORE_ONLY = `trust:
  bundles: [tls/bundle.pem]
  trustDomains: [cluster.local]
policy: { dir: policy }
firestore:
  project: shop-prod
  upstream: { emulator: "127.0.0.1:8080" }
`;

/** The message of the MG_CONFIG_INVALID that `run` throws. */
function problemOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
    return error.message;
  }
  assert.fail('expected MG_CONFIG_INVALID');
}

describe('config errors', () => {
  let dir: string;
  let file: string;
  const check = (text: string) => problemOf(() => parseConfigText(text, file));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-config-errors-'));
    file = join(dir, 'meshgate.yaml');
    await mkdir(join(dir, 'tls'));
    await mkdir(join(dir, 'policy'));
    for (const f of ['server.crt', 'server.key', 'bundle.pem']) await writeFile(join(dir, 'tls', f), 'x');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('the valid base loads', () => {
    assert.equal(parseConfigText(VALID, file).listener?.port, 3307);
  });

  const cases: [string, string, string][] = [
    [
      'a misspelt key, with the allowed keys and the likely one (and no separate "tls is required")',
      VALID.replace('  tls:\n', '  tsl:\n'),
      'listener.tsl: unknown key; allowed here: host, port, tls, maxClientMessageBytes, timeouts; did you mean tls? (line 3, column 3)',
    ],
    [
      'a key one level too high',
      VALID.replace('  port: 3307\n', '  port: 3307\n  cert: x\n'),
      'listener.cert: unknown key; allowed here: host, port, tls, maxClientMessageBytes, timeouts; did you mean to put it under tls? (line 3, column 3)',
    ],
    [
      'an enum value, with its allowed values',
      VALID.replace('  tls:\n', '  tls:\n    mode: tls\n'),
      'listener.tls.mode: expected one of starttls, first-byte, got the string "tls" (line 4, column 5)',
    ],
    [
      'a quoted number',
      VALID.replace('port: 3307', 'port: "3307"'),
      'listener.port: expected a whole number from 0 to 65535, got the string "3307"; write it without quotes (line 2, column 3)',
    ],
    ['a number out of range', VALID.replace('port: 3307', 'port: 70000'), 'listener.port: must be at most 65535, got the number 70000 (line 2, column 3)'],
    [
      'a fraction where a whole number goes',
      VALID.replace('port: 3307', 'port: 1.5'),
      'listener.port: expected a whole number from 0 to 65535, got the number 1.5 (line 2, column 3)',
    ],
    [
      'a scalar where a list goes',
      VALID.replace('[tls/bundle.pem]', 'tls/bundle.pem'),
      'trust.bundles: expected a list of PEM file paths, got the string "tls/bundle.pem"; write a list: [tls/bundle.pem] (line 7, column 3)',
    ],
    [
      'an empty list, with what belongs in it',
      VALID.replace('[tls/bundle.pem]', '[]'),
      "trust.bundles: must list at least one entry: PEM roots that sign workload certificates, e.g. [tls/bundle.pem] (meshgate's CA bundle or Istio's root-cert.pem) (line 7, column 3)",
    ],
    [
      'a missing field, at its parent\'s line, with what it is for',
      VALID.replace('    cert: tls/server.crt\n', ''),
      'listener.tls.cert: required: the PEM certificate meshgate presents to clients, e.g. tls/server.crt (`meshgate ca issue-server` writes one); or name it once for every port: tls: { cert, key } (line 3, column 3)',
    ],
    [
      'a missing section, with an example (no line: it is nowhere in the file)',
      VALID.replace(/trust:\n.*\n.*\n/, ''),
      'trust: required: whose client certificates identify workloads: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }',
    ],
    [
      'an inline password',
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', 'hunter2'),
      'upstream.roles.shop_writer.password: inline passwords are not allowed: use password: { file: … } or { env: … } (line 13, column 7)',
    ],
    [
      'a numeric inline password',
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', '123456'),
      'upstream.roles.shop_writer.password: inline passwords are not allowed: use password: { file: … } or { env: … } (line 13, column 7)',
    ],
    [
      'an inline connection URL',
      `${VALID}state: { postgres: { url: "postgres://meshgate:pw@db/leases" } }\n`,
      'state.postgres.url: inline secrets are not allowed: use url: { file: … } or { env: … } (line 15, column 22)',
    ],
    [
      'both forms of a secret',
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', '{ env: A, file: b }'),
      'upstream.roles.shop_writer.password: env and file cannot be used together: give { file: PATH } or { env: VARIABLE } (line 13, column 7)',
    ],
    [
      'an empty secret reference',
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', '{}'),
      'upstream.roles.shop_writer.password: expected { file: PATH } or { env: VARIABLE }, got an empty mapping (line 13, column 7)',
    ],
    [
      'a misspelt key inside a secret reference',
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', '{ fil: secrets/shop }'),
      'upstream.roles.shop_writer.password.fil: unknown key; allowed here: env, file; did you mean file? (line 13, column 19)',
    ],
    [
      'an empty secret',
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', ''),
      'upstream.roles.shop_writer.password: expected password: { file: … } or { env: … }, got an empty value (line 13, column 7)',
    ],
    [
      'a role name MariaDB would not take',
      VALID.replace('shop_writer:', 'shop-writer:'),
      'upstream.roles["shop-writer"]: not allowed as a name here: expected a MariaDB role name: 1 to 64 letters, digits, _ and $, got the string "shop-writer" (line 11, column 5)',
    ],
    [
      'a union given a scalar',
      `${VALID}firestore:\n  project: p\n  upstream: "127.0.0.1:8080"\n`,
      'firestore.upstream: expected { emulator: HOST:PORT }, { google: { endpoint? } } or { launchEmulator: { port? } }, got the string "127.0.0.1:8080" (line 17, column 3)',
    ],
    [
      'a misspelt key in a union',
      `${VALID}firestore:\n  project: p\n  upstream: { emulater: "127.0.0.1:8080" }\n`,
      'firestore.upstream.emulater: unknown key; allowed here: emulator, google, launchEmulator; did you mean emulator? (line 17, column 15)',
    ],
    [
      'a bad value inside one form of a union',
      `${VALID}firestore:\n  project: p\n  upstream: { emulator: localhost }\n`,
      'firestore.upstream.emulator: expected HOST:PORT of the emulator, e.g. 127.0.0.1:8080, got the string "localhost" (line 17, column 15)',
    ],
    [
      'a missing union',
      `${VALID}firestore:\n  project: p\n`,
      'firestore.upstream: required: where Firestore calls go: { google: {} } for Google, { emulator: 127.0.0.1:8080 } or { launchEmulator: {} } in development (line 15, column 1)',
    ],
    [
      'a duration',
      VALID.replace('upstream:\n', 'upstream:\n  credentials:\n    admin: { user: a, password: { file: admin } }\n    sessionTtl: 1x\n'),
      'upstream.credentials.sessionTtl: expected a duration: a whole number and one unit, s, m, h or d (e.g. 90s, 15m, 4h), got the string "1x" (line 12, column 5)',
    ],
    [
      'a string format',
      `${VALID}admin: { principals: [ops] }\n`,
      'admin.principals[0]: expected a SPIFFE ID (spiffe://trust-domain/path), got the string "ops" (line 15, column 23)',
    ],
    [
      'a discriminator',
      `${VALID}tokens:\n  issuers:\n    - { issuer: i, audiences: [a], jwks: { file: j.json }, mapping: { kind: k8s }, trustDomain: td }\n`,
      'tokens.issuers[0].mapping.kind: expected one of kubernetes, github-actions, jwt-svid, oidc, got the string "k8s" (line 17, column 71)',
    ],
    [
      'two forms of a union at once',
      `${VALID}tokens:\n  issuers:\n    - { issuer: i, audiences: [a], jwks: { url: "https://idp/jwks", file: j.json }, mapping: { kind: kubernetes }, trustDomain: td }\n`,
      'tokens.issuers[0].jwks: url and file cannot be used together: give { url, caFile?, cacheMaxAgeSeconds?, timeoutMs?, cooldownMs? } or { file } (line 17, column 36)',
    ],
    [
      'a refinement of the token schema, in its own words',
      `${VALID}tokens:\n  issuers:\n    - { issuer: i, audiences: [a], jwks: { url: "http://idp.example/jwks" }, mapping: { kind: kubernetes }, trustDomain: td }\n`,
      'tokens.issuers[0].jwks.url: plain http is allowed only for loopback addresses; use https (and jwks.caFile for a private CA) (line 17, column 44)',
    ],
    [
      'a file that is not a mapping',
      '- listener\n- trust\n',
      'expected a mapping (keys: listener, tls, trust, upstream, state, firestore, admin, policy, tokens, signer, audit, tracing, metrics, throttle, shutdown), got a list (line 1, column 1)',
    ],
    ['a repeated key', `${VALID}policy: { dir: other }\n`, 'not valid YAML: Map keys must be unique (line 15, column 1)'],
    [
      'no upstream account at all',
      VALID.replace(/upstream:\n(.*\n){4}/, 'upstream: { host: db }\n'),
      'upstream: give meshgate an admin account for dynamic credentials (upstream.credentials.admin: { user, password: { file: … } }), or static accounts per role (upstream.roles) (line 9, column 1)',
    ],
    [
      'rotation without a password file',
      VALID.replace('upstream:\n', 'upstream:\n  credentials:\n    admin: { user: a, password: { env: X } }\n    rotateAdminEvery: 24h\n'),
      'upstream.credentials.rotateAdminEvery: needs admin.password from a file, where meshgate writes the new password: use password: { file: … } (line 12, column 5)',
    ],
    [
      'both lease stores',
      `${VALID}state: { embedded: { dir: s }, postgres: { url: { env: U } } }\n`,
      'state: embedded and postgres cannot be used together: choose one place for leases (line 15, column 1)',
    ],
    [
      'no engine at all',
      VALID.replace(/listener:\n(.*\n){4}/, '').replace(/upstream:\n(.*\n){4}/, ''),
      'configure at least one engine: listener+upstream (MariaDB) or firestore (line 1, column 1)',
    ],
    [
      'a listener without its MariaDB',
      VALID.replace(/upstream:\n(.*\n){4}/, ''),
      'upstream: required: the MariaDB server behind meshgate and the accounts meshgate uses there (upstream.credentials or upstream.roles); the MySQL engine needs it with listener',
    ],
    [
      'a MariaDB without the listener',
      VALID.replace(/listener:\n(.*\n){4}/, ''),
      'listener: required: where MySQL clients connect: { port: 3307, tls: { cert: tls/server.crt, key: tls/server.key } }; the MySQL engine needs it with upstream',
    ],
    [
      'a Firestore-only config with mTLS and no certificate, with the plaintext alternative',
      FIRESTORE_ONLY,
      "tls: required: meshgate's server certificate for firestore.tls: mtls: { cert: tls/server.crt, key: tls/server.key } (or firestore.tls: plaintext, behind the pod's Istio sidecar)",
    ],
    [
      'the certificate in both places',
      `tls: { cert: tls/server.crt, key: tls/server.key }\n${VALID}`,
      "listener.tls.cert: tls names meshgate's certificate for every port already: remove listener.tls.cert and listener.tls.key (one certificate, one place) (line 5, column 5)",
    ],
    [
      'a missing certificate file, where the file names it',
      `tls: { cert: tls/nothing.crt, key: tls/server.key }\n${FIRESTORE_ONLY}`,
      'tls.cert: tls/nothing.crt (DIR/tls/nothing.crt) does not exist; create it with `meshgate ca issue-server` (line 1, column 8)',
    ],
  ];

  for (const [what, text, expected] of cases) {
    it(`names ${what}`, () => {
      assert.equal(check(text), `${file}: ${expected.replace('DIR', dir)}`);
    });
  }

  it('never repeats an inline secret, wherever it is written', () => {
    const secret = 'S3cr3t-value-9';
    const texts = [
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', secret),
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', `{ value: ${secret} }`),
      VALID.replace('{ env: SHOP_WRITER_PASSWORD }', `[${secret}]`),
      VALID.replace('upstream:\n', `upstream:\n  credentials: { admin: { user: a, password: ${secret} } }\n`),
      `${VALID}state: { postgres: { url: "postgres://u:${secret}@db/x" } }\n`,
    ];
    for (const text of texts) assert.ok(!check(text).includes(secret), text);
  });

  it('lists several problems one per line, in the order they are written; a typo does not also count as a missing key', () => {
    const text = VALID.replace('port: 3307', 'port: 70000').replace('cluster.local', '""').replace('user: mg_shop_writer', 'user: ""').replace('policy: { dir: policy }', 'policy: { dri: policy }');
    assert.equal(
      check(text),
      [
        '4 problems in the configuration:',
        `${file}: listener.port: must be at most 65535, got the number 70000 (line 2, column 3)`,
        `${file}: trust.trustDomains[0]: must not be empty (line 8, column 18)`,
        `${file}: upstream.roles.shop_writer.user: must not be empty: the MariaDB user name (line 12, column 7)`,
        `${file}: policy.dri: unknown key; allowed here: dir, watch, pollInterval, openSessions, git; did you mean dir? (line 14, column 11)`,
      ].join('\n  '),
    );
  });

  it(`shows at most ${MAX_REPORTED} problems, then how many more`, () => {
    const text = Array.from({ length: MAX_REPORTED + 5 }, (_, i) => `extra${i}: 1`).join('\n') + '\n' + VALID;
    const lines = check(text).split('\n  ');
    assert.equal(lines[0], `${MAX_REPORTED + 5} problems in the configuration:`);
    assert.equal(lines.length, 1 + MAX_REPORTED + 1);
    assert.match(lines[1]!, /: extra0: unknown key; allowed here: listener, .* \(line 1, column 1\)$/);
    assert.equal(lines.at(-1), '... and 5 more');
  });

  it('names every missing section of an empty file, and that it needs an engine', () => {
    const lines = check('').split('\n  ');
    assert.equal(lines[0], '3 problems in the configuration:');
    assert.deepEqual(
      lines.slice(1).map((line) => line.slice(file.length + 2).split(':')[0]),
      ['trust', 'policy', 'configure at least one engine'],
    );
    assert.equal(lines[3], `${file}: configure at least one engine: listener+upstream (MariaDB) or firestore`);
  });

  it('names fields but no lines for a configuration given as an object', () => {
    const raw = {
      listener: { port: 'x', tls: { key: 'k' } },
      trust: { bundles: [], trustDomains: ['cluster.local'] },
      upstream: { roles: { r: { user: 'u', password: 'hunter2' } } },
      policy: { dir: 'policy' },
    };
    assert.equal(
      problemOf(() => resolveConfig(raw, file)),
      [
        '4 problems in the configuration:',
        `${file}: listener.port: expected a whole number from 0 to 65535, got the string "x"`,
        `${file}: trust.bundles: must list at least one entry: PEM roots that sign workload certificates, e.g. [tls/bundle.pem] (meshgate's CA bundle or Istio's root-cert.pem)`,
        `${file}: upstream.roles.r.password: inline passwords are not allowed: use password: { file: … } or { env: … }`,
        // Judged across sections, after each section's own fields.
        `${file}: listener.tls.cert: required: the PEM certificate meshgate presents to clients, e.g. tls/server.crt (\`meshgate ca issue-server\` writes one); or name it once for every port: tls: { cert, key }`,
      ].join('\n  '),
    );
  });

  it('suggests the allowed word a typo meant, and nothing for a stranger', () => {
    assert.equal(closest('tsl', ['host', 'port', 'tls']), 'tls');
    assert.equal(closest('Port', ['host', 'port', 'tls']), 'port');
    assert.equal(closest('trustDomain', ['bundles', 'trustDomains']), 'trustDomains');
    assert.equal(closest('xyz', ['host', 'port', 'tls']), null);
  });

  it('writes paths as they are navigated in YAML', () => {
    assert.equal(formatPath(['upstream', 'roles', 'shop-writer', 'password']), 'upstream.roles["shop-writer"].password');
    assert.equal(formatPath(['tokens', 'issuers', 0, 'jwks']), 'tokens.issuers[0].jwks');
  });
});
