/**
 * `meshgate demo` when its MariaDB login fails: a refused password is not a missing MariaDB,
 * so only nothing listening gets the install advice.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../helpers/cli.ts';
import { closedPort } from '../helpers/tcp-proxy.ts';
import { MARIADB } from '../helpers/meshgate.ts';

describe('meshgate demo: MariaDB login failures', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-demo-login-'));
  });
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a wrong password says the login was refused and names --mariadb, without install advice', async () => {
    const io = captureIO(dir);
    const url = `mysql://${MARIADB.user}:${encodeURIComponent(MARIADB.password + 'wrong')}@${MARIADB.host}:${MARIADB.port}`;
    const code = await runCli(['demo', '--dir', dir, '--name', 'mgt_never_created', '--mariadb', url], io);
    const text = io.stderr.join('\n');
    assert.equal(code, 1, io.all.join('\n'));
    assert.match(text, /\[MG_UPSTREAM_AUTH_FAILED\]/);
    assert.match(text, new RegExp(`refused the login as '${MARIADB.user}'`));
    assert.match(text, /1045/);
    assert.match(text, /check the user and password in --mariadb/);
    assert.doesNotMatch(text, /apt-get|[Ii]nstall/, 'a running MariaDB that refuses a password needs no install');
    assert.ok(!text.includes('wrong'), 'the password given never appears');
  });

  it('nothing listening on the port gets the install-and-start advice', async () => {
    const io = captureIO(dir);
    const port = await closedPort();
    const code = await runCli(['demo', '--dir', dir, '--name', 'mgt_never_created', '--mariadb', `mysql://root@127.0.0.1:${port}`], io);
    const text = io.stderr.join('\n');
    assert.equal(code, 1, io.all.join('\n'));
    assert.match(text, /\[MG_UPSTREAM_UNAVAILABLE\] nothing listens on 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.match(text, /apt-get install -y mariadb-server/);
  });
});
