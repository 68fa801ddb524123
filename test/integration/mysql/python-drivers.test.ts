/**
 * PyMySQL and mysqlclient (MySQLdb), Debian's python3-pymysql and python3-mysqldb, through
 * meshgate with the workload's certificate files, each compared with itself direct: the
 * scenario in test/fixtures/clients/scenario.py (see test/helpers/client-scenario.ts).
 * Neither prepares on the server: both interpolate parameters into COM_QUERY text.
 */
import { describeClientScenario } from '../../helpers/client-scenario.ts';
import { fixture, PYTHON, runProgram } from '../../helpers/external-clients.ts';

const SCRIPT = fixture('scenario.py');

await describeClientScenario({
  title: 'PyMySQL through meshgate, as direct',
  client: 'pymysql',
  name: 'pymysql',
  serverPrepared: false,
  reportsSqlstate: false,
  attributes: ['_client_name', '_client_version', '_pid'],
  sendsProgramName: true,
  run: (_input, file) => runProgram(PYTHON, [SCRIPT, 'pymysql', file], { timeoutMs: 90_000 }),
});

await describeClientScenario({
  title: 'mysqlclient (MySQLdb, libmariadb) through meshgate, as direct',
  client: 'mysqlclient',
  name: 'mysqldb',
  serverPrepared: false,
  reportsSqlstate: false,
  attributes: ['_client_name', '_client_version', '_os', '_pid', '_platform'],
  sendsProgramName: false,
  run: (_input, file) => runProgram(PYTHON, [SCRIPT, 'mysqldb', file], { timeoutMs: 90_000 }),
});
