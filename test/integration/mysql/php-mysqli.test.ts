/**
 * PHP's mysqli (mysqlnd; Debian's php-mysql) through meshgate with the workload's certificate
 * files, compared with itself direct: the scenario in test/fixtures/clients/scenario.php (see
 * test/helpers/client-scenario.ts). mysqli prepares on the server, sends large values both
 * inline and as COM_STMT_SEND_LONG_DATA, and reads CALL results from a prepared statement.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { describeClientScenario } from '../../helpers/client-scenario.ts';
import { fixture, runProgram } from '../../helpers/external-clients.ts';

const SCRIPT = fixture('scenario.php');
/** PHP refuses LOAD DATA LOCAL INFILE unless its ini allows it, whatever the server says. */
const PHP_ARGS = ['-d', 'mysqli.allow_local_infile=1', SCRIPT];

await describeClientScenario({
  title: 'PHP mysqli through meshgate, as direct',
  client: 'php-mysqli',
  name: 'mysqli',
  serverPrepared: true,
  reportsSqlstate: true,
  attributes: ['_client_name', '_server_host'],
  sendsProgramName: false,
  run: (_input, file) => runProgram('php', [...PHP_ARGS, 'scenario', file], { timeoutMs: 90_000 }),
  extra(context) {
    // mysqli resets a persistent connection it hands out again with COM_CHANGE_USER (to the
    // same user), which meshgate refuses (MG_COMMAND_FORBIDDEN); mysqli then quietly opens a
    // new connection. The connection id from the handshake tells which it did.
    it('a persistent connection (p:host) is reused by the next mysqli in the same process, as direct', async () => {
      const { dir, input } = context();
      const reuse = async (side: 'via' | 'direct') => {
        const file = join(dir, `persistent-${side}.json`);
        await writeFile(file, JSON.stringify(input(side)));
        const result = await runProgram('php', [...PHP_ARGS, 'persistent', file], { timeoutMs: 60_000 });
        assert.equal(result.code, 0, result.stderr);
        return JSON.parse(result.stdout) as { first: number; second: number; ping: boolean };
      };
      const direct = await reuse('direct');
      assert.equal(direct.second, direct.first, 'direct, mysqli reuses its persistent connection');
      const via = await reuse('via');
      assert.equal(via.ping, true);
      assert.equal(via.second, via.first, 'through meshgate, mysqli opened a new connection instead of reusing its persistent one');
    });
  },
});
