/**
 * `upstream.tls`: meshgate's client certificate toward MariaDB, the CA that signs MariaDB's,
 * and how much of MariaDB's certificate to check. Its files are read at load, so a missing
 * file, a key that belongs to another certificate or a certificate MariaDB cannot name in
 * `REQUIRE SUBJECT` fails here, naming the field and its line, not at the first login.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfigText } from '../../../src/config/load.ts';
import { isMeshgateError } from '../../../src/errors/index.ts';
import { initCa, issueServerCert, issueSvid } from '../../../src/identity/ca.ts';
import { makeTempDir } from '../../helpers/certs.ts';

const base = (tls: string, accounts = 'credentials: { admin: { user: meshgate_admin, password: { file: admin.pw } } }') => `listener:
  tls: { cert: tls/server.crt, key: tls/server.key }
trust: { bundles: [tls/bundle.pem], trustDomains: [cluster.local] }
policy: { dir: policy }
upstream:
  host: db.internal
  ${accounts}
  tls:
${tls}`;

function problemOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(isMeshgateError(error) && error.code === 'MG_CONFIG_INVALID', String(error));
    return error.message;
  }
  assert.fail('expected MG_CONFIG_INVALID');
}

describe('upstream.tls', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;

  before(async () => {
    tmp = await makeTempDir('meshgate-upstream-tls-config-');
    file = join(tmp.dir, 'meshgate.yaml');
    const caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: 'cluster.local' });
    const tls = join(tmp.dir, 'tls');
    await issueServerCert({ caDir, outDir: tls, name: 'server' });
    await issueServerCert({ caDir, outDir: tls, dnsNames: ['meshgate-upstream'], name: 'upstream' });
    await issueServerCert({ caDir, outDir: tls, dnsNames: ['other'], name: 'other' });
    await issueSvid({ caDir, spiffeId: 'spiffe://cluster.local/ns/meshgate/sa/meshgate', outDir: tls, name: 'svid' });
    await copyFile(join(caDir, 'bundle.pem'), join(tls, 'mariadb-ca.pem'));
    await writeFile(join(tls, 'garbage.crt'), 'not a certificate\n');
    await writeFile(join(tmp.dir, 'admin.pw'), 'x\n');
    await mkdir(join(tmp.dir, 'policy'));
  });
  after(async () => tmp?.cleanup());

  it('loads, with paths relative to the config file and verify-full by default', () => {
    const config = parseConfigText(base('    ca: tls/mariadb-ca.pem\n    cert: tls/upstream.crt\n    key: tls/upstream.key\n'), file);
    assert.deepEqual(config.upstream?.tls, {
      ca: join(tmp.dir, 'tls', 'mariadb-ca.pem'),
      cert: join(tmp.dir, 'tls', 'upstream.crt'),
      key: join(tmp.dir, 'tls', 'upstream.key'),
      verify: 'verify-full',
    });
  });

  it('verify-ca is accepted; anything else is named with the choices', () => {
    const ok = parseConfigText(base('    ca: tls/mariadb-ca.pem\n    cert: tls/upstream.crt\n    key: tls/upstream.key\n    verify: verify-ca\n'), file);
    assert.equal(ok.upstream?.tls?.verify, 'verify-ca');
    const message = problemOf(() => parseConfigText(base('    ca: tls/mariadb-ca.pem\n    cert: tls/upstream.crt\n    key: tls/upstream.key\n    verify: none\n'), file));
    assert.match(message, /upstream\.tls\.verify: expected one of verify-full, verify-ca, got the string "none" \(line 12, column 5\)/);
  });

  it('a missing file names its field and line', () => {
    const message = problemOf(() => parseConfigText(base('    ca: tls/nope.pem\n    cert: tls/upstream.crt\n    key: tls/upstream.key\n'), file));
    assert.match(message, /upstream\.tls\.ca: tls\/nope\.pem \(.*\) does not exist; .*MariaDB's ssl_cert.* \(line 9, column 5\)/);
  });

  it('a key of another certificate is refused at load', () => {
    const message = problemOf(() => parseConfigText(base('    ca: tls/mariadb-ca.pem\n    cert: tls/upstream.crt\n    key: tls/other.key\n'), file));
    assert.match(message, /upstream\.tls\.key: tls\/other\.key is not the private key of tls\/upstream\.crt.* \(line 11, column 5\)/);
  });

  it('a file that is no certificate is refused at load', () => {
    const message = problemOf(() => parseConfigText(base('    ca: tls/garbage.crt\n    cert: tls/upstream.crt\n    key: tls/upstream.key\n'), file));
    assert.match(message, /upstream\.tls\.ca: tls\/garbage\.crt holds no PEM certificate; .*ssl_cert \(line 9, column 5\)/);
  });

  it('with dynamic credentials, a certificate with an empty subject (an SVID) is refused: REQUIRE SUBJECT needs one', () => {
    const message = problemOf(() => parseConfigText(base('    ca: tls/mariadb-ca.pem\n    cert: tls/svid.crt\n    key: tls/svid.key\n'), file));
    assert.match(message, /upstream\.tls\.cert: tls\/svid\.crt has an empty subject.*REQUIRE SUBJECT.*meshgate ca issue-server .* \(line 10, column 5\)/);
  });

  it('with static accounts, an SVID will do (the operator writes their REQUIRE clauses)', () => {
    const config = parseConfigText(
      base('    ca: tls/mariadb-ca.pem\n    cert: tls/svid.crt\n    key: tls/svid.key\n', 'roles: { shop: { user: mg_shop, password: { env: SHOP_PW } } }'),
      file,
    );
    assert.equal(config.upstream?.tls?.cert, join(tmp.dir, 'tls', 'svid.crt'));
  });
});
