/**
 * MariaDB Connector/J (Debian's libmariadb-java, JDBC) through meshgate, with the workload's
 * certificate and key as a PKCS#12 key store, compared with itself direct: the scenario in
 * test/fixtures/clients/Scenario.java, compiled with javac at test time (see
 * test/helpers/client-scenario.ts). useServerPrepStmts=true puts prepared statements and
 * CallableStatement on COM_STMT_PREPARE/EXECUTE.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { describeClientScenario, type ScenarioInput } from '../../helpers/client-scenario.ts';
import { CONNECTOR_J_JAR, fixture, runOk, runProgram } from '../../helpers/external-clients.ts';

/** java.util.Properties text (read as UTF-8 by Scenario.java). */
function properties(input: ScenarioInput, programName = input.programName): string {
  const entries: [string, string][] = [
    ['host', input.host],
    ['port', String(input.port)],
    ['user', input.user],
    ['password', input.password],
    ['database', input.database],
    ['table', input.table],
    ['csv', input.csv],
    ['largeBytes', String(input.largeBytes)],
    ['programName', programName],
    ['workDir', input.workDir],
    ...(input.tls === null ? [] : ([['tls.ca', input.tls.ca], ['tls.cert', input.tls.cert], ['tls.key', input.tls.key]] as [string, string][])),
    ...input.errorStatements.map((statement, i): [string, string] => [`errorStatement.${i}`, statement]),
  ];
  const escape = (text: string) => text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replace(/^ /, '\\ ');
  return entries.map(([key, value]) => `${key}=${escape(value)}\n`).join('');
}

const java = async (workDir: string, mode: 'scenario' | 'attributes', input: ScenarioInput, programName?: string) => {
  const file = join(workDir, `${input.table}-${mode}-${programName ?? 'scenario'}.properties`);
  await writeFile(file, properties(input, programName));
  return runProgram('java', ['-cp', `${workDir}:${CONNECTOR_J_JAR}`, 'Scenario', mode, file], { timeoutMs: 120_000 });
};

await describeClientScenario({
  title: 'Connector/J through meshgate, as direct',
  client: 'connector-j',
  name: 'connj',
  serverPrepared: true,
  reportsSqlstate: true,
  attributes: ['_client_name', '_client_version', '_os', '_pid', '_thread', '_java_vendor', '_java_version'],
  sendsProgramName: true,
  async prepare(workDir) {
    await runOk('javac', ['-d', workDir, '-cp', CONNECTOR_J_JAR, fixture('Scenario.java')], { timeoutMs: 120_000 });
  },
  run: (input, _file, workDir) => java(workDir, 'scenario', input),
  extra(context) {
    it('each new session’s connection attributes reach MariaDB, also when meshgate hands it a pooled connection', async () => {
      const { dir, input, logins } = context();
      for (const name of ['mg-connj-first', 'mg-connj-second']) {
        const result = await java(dir, 'attributes', input('via'), name);
        assert.equal(result.code, 0, result.stderr);
      }
      const names = logins('via').map((attributes) => attributes.get('program_name'));
      assert.ok(names.includes('mg-connj-first'), `MariaDB never saw the first session's program_name; it saw ${names.join(', ')}`);
      assert.ok(names.includes('mg-connj-second'), `MariaDB never saw the second session's program_name (a pooled connection keeps the attributes of the session that opened it); it saw ${names.join(', ')}`);
    });
  },
});
