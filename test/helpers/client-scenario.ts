/**
 * What an application does with its MariaDB driver, run by a real client program twice:
 * through meshgate (TLS with the workload's certificate) and direct to MariaDB (root, as an
 * operator would). The program is the client's own (test/fixtures/clients/scenario.*): it
 * reads a JSON input (ScenarioInput) and prints one JSON object with a section per step:
 * session, text, utf8, prepared, transaction, call, multiStatement, errors, afterErrors,
 * localInfile, large. Each section must be the same both ways (the program serialises every
 * value as its driver returned it); `session` names who the client is and differs.
 *
 * Both ways pass a recording TCP proxy in front of MariaDB, so the test also sees the login
 * MariaDB received: the client's connection attributes must arrive as they do direct, with
 * meshgate's own added.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeChangeUser } from '../../src/engines/mysql/codec/change-user.ts';
import { Command } from '../../src/engines/mysql/codec/constants.ts';
import { decodeHandshakeResponse } from '../../src/engines/mysql/codec/handshake.ts';
import { PacketFramer } from '../../src/engines/mysql/codec/framer.ts';
import { connectAdmin } from '../../src/demo/provision.ts';
import { cleanup } from './cleanup.ts';
import { clientDir, clientMissing, type ExternalClient, type ProgramResult } from './external-clients.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, withMaxAllowedPacket, type Harness } from './meshgate.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/** Objects the scenario reads, made by root before meshgate starts (so no definer question arises). */
export const SCENARIO_SETUP_SQL = [
  `CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(100) CHARACTER SET utf8mb4, price DECIMAL(12,4), ratio DOUBLE,
    big BIGINT UNSIGNED, born DATE, at DATETIME(6), raw VARBINARY(16), note TEXT, flag TINYINT(1))`,
  `INSERT INTO {db}.items VALUES
    (1, 'plain', 12.5, 0.25, 18446744073709551615, '2024-02-29', '2024-02-29 23:59:58.123456', X'00FF7F80', 'a\\ttab', 1),
    (2, 'héllo wörld 😀 中文', -0.0001, -1e300, 0, '1000-01-01', '9999-12-31 23:59:59.999999', X'', '', 0),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
  'CREATE PROCEDURE {db}.two_results(IN n INT) BEGIN SELECT n AS n, n * 2 AS twice; SELECT id, name FROM {db}.items ORDER BY id; END',
  "CREATE PROCEDURE {db}.fail_with(IN message VARCHAR(100)) SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message, MYSQL_ERRNO = 1644",
];

/** Statements each failing its own way; code, SQLSTATE and message must be as direct. */
export const ERROR_STATEMENTS = [
  'SELEC 1',
  'SELECT * FROM no_such_table',
  'SELECT no_such_column FROM items',
  "INSERT INTO items (id, name) VALUES (1, 'duplicate')",
  'INSERT INTO items (id) VALUES (NULL)',
  "CALL fail_with('custom failure 😀')",
  'SELECT 1 FROM DUAL WHERE 1 = (SELECT id FROM items)',
  "INSERT INTO items (id, price) VALUES (9, 'not a number')",
];

/** What the client program reads. */
export interface ScenarioInput {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** PEM files for TLS with a client certificate; null direct (MariaDB here has no TLS). */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string } | null;
  /** The scratch table this run's writes go to; the program creates and drops it. */
  readonly table: string;
  /** A CSV file for LOAD DATA LOCAL INFILE: amount,note lines. */
  readonly csv: string;
  /** Size of the large value: more than one 16 MiB packet. */
  readonly largeBytes: number;
  readonly maxAllowedPacket: number;
  /** Sent as the program_name connection attribute where the driver can. */
  readonly programName: string;
  readonly errorStatements: readonly string[];
  /** A directory the program may write to (a compiled class, a keystore). */
  readonly workDir: string;
}

export type ScenarioOutput = Record<string, unknown> & { session: { role: string | null; database: string | null; connectionId: number | string } };

export type Side = 'via' | 'direct';

export interface ScenarioContext {
  readonly h: Harness;
  readonly dir: string;
  input(side: Side): ScenarioInput;
  output(side: Side): ScenarioOutput;
  /** The connection attributes of every login MariaDB received on that side, in order. */
  logins(side: Side): ReadonlyMap<string, string>[];
}

export interface ScenarioClient {
  /** The suite's title, e.g. 'PyMySQL through meshgate'. */
  readonly title: string;
  readonly client: ExternalClient;
  /** Short harness name (database `mgt_<name>_<run>`). */
  readonly name: string;
  /** Its prepared statements are COM_STMT_PREPARE/EXECUTE on the wire (else text, interpolated by the driver). */
  readonly serverPrepared: boolean;
  /** Its errors carry SQLSTATE (PyMySQL's and MySQLdb's do not). */
  readonly reportsSqlstate: boolean;
  /** The connection attributes it sends on its own (besides program_name, where it can send that). */
  readonly attributes: readonly string[];
  /** Whether it can send program_name from ScenarioInput. */
  readonly sendsProgramName: boolean;
  /** Once, before the runs (compile a program, say). */
  prepare?(workDir: string): Promise<void>;
  /** Runs the scenario program; `inputFile` holds `input` as JSON. */
  run(input: ScenarioInput, inputFile: string, workDir: string): Promise<ProgramResult>;
  /** Further tests of this client, run after the common ones. */
  extra?(ctx: () => ScenarioContext): void;
}

/** The sections every scenario program prints; the tests above check each. */
const COMMON_SECTIONS = ['session', 'text', 'utf8', 'prepared', 'transaction', 'call', 'multiStatement', 'errors', 'afterErrors', 'localInfile', 'large'];
const LARGE_BYTES = 20 * 1024 * 1024;
const MAX_ALLOWED_PACKET = 64 * 1024 * 1024;

/**
 * The connection attributes of each MySQL login the proxy saw: a client's first message, and
 * the COM_CHANGE_USER by which meshgate's pool renews a connection for its next session.
 */
export function loginsSeen(proxy: TcpProxy): ReadonlyMap<string, string>[] {
  const logins: ReadonlyMap<string, string>[] = [];
  proxy.openings.forEach((opening, i) => {
    const [first] = new PacketFramer(1 << 20).push(opening, 1);
    if (first === undefined) return;
    const login = decodeHandshakeResponse(first.payload);
    logins.push(login.attributes);
    for (const change of proxy.kept[i] ?? []) logins.push(decodeChangeUser(change.payload, login.capabilities).attributes);
  });
  return logins;
}

/** The protocol commands meshgate audited for one upstream connection. */
async function auditedCommands(h: Harness, upstreamConnectionId: number): Promise<Set<string>> {
  const events = (await h.readAudit()).filter((e) => e.type === 'statement' && e.upstreamConnectionId === upstreamConnectionId);
  return new Set(events.map((e) => String(e.command)));
}

/** What varies between two runs of the same error for reasons of who ran it, not what. */
function normalizedMessage(message: string): string {
  return message.replace(/^\(conn=\d+\) /, '');
}

/** Registers the suite; await it at the top of the test file (it first looks for the client). */
export async function describeClientScenario(client: ScenarioClient): Promise<void> {
  const skip = await clientMissing(client.client);
  describe(client.title, { skip }, () => {
    let h: Harness;
    let work: Awaited<ReturnType<typeof clientDir>>;
    let releasePacketLimit: (() => Promise<void>) | undefined;
    let viaProxy: TcpProxy;
    let directProxy: TcpProxy;
    const inputs = new Map<Side, ScenarioInput>();
    const outputs = new Map<Side, ScenarioOutput>();
    let viaConnectionId = 0;

    const runSide = async (side: Side) => {
      const input = inputs.get(side)!;
      const file = join(work.dir, `input-${side}.json`);
      await writeFile(file, JSON.stringify(input));
      const result = await client.run(input, file, work.dir);
      assert.equal(result.code, 0, `the ${client.client} scenario failed ${side}:\n${result.stderr}\n${result.stdout.slice(0, 2000)}`);
      outputs.set(side, JSON.parse(result.stdout) as ScenarioOutput);
    };

    before(async () => {
      work = await clientDir(client.name);
      releasePacketLimit = await withMaxAllowedPacket(MAX_ALLOWED_PACKET);
      // The pool renews a connection for its next session with COM_CHANGE_USER, which carries that session's attributes.
      viaProxy = await startTcpProxy(MARIADB, { keepMysqlMessage: (frame) => frame.seq === 0 && frame.payload[0] === Command.CHANGE_USER });
      directProxy = await startTcpProxy(MARIADB);
      h = await startHarness({
        name: client.name,
        workloads: STANDARD_WORKLOADS,
        setupSql: SCENARIO_SETUP_SQL,
        // The writer may LOAD DATA LOCAL INFILE, so the scenario can compare it with direct.
        policy: SCENARIO_POLICY,
        config: (c) => {
          c.upstream.port = viaProxy.port;
        },
      });
      const root = await connectAdmin(MARIADB);
      try {
        await root.query(`GRANT EXECUTE ON \`${h.database}\`.* TO \`${h.roles.rw}\``);
      } finally {
        await root.end();
      }
      const csv = join(work.dir, 'rows.csv');
      await writeFile(csv, ['1,csv one', '2,csv twö 😀', '3,"csv, quoted"', ''].join('\n'));
      const files = h.clients.orders!;
      const common = { host: '127.0.0.1', database: h.database, csv, largeBytes: LARGE_BYTES, maxAllowedPacket: MAX_ALLOWED_PACKET, errorStatements: ERROR_STATEMENTS, workDir: work.dir };
      inputs.set('via', { ...common, port: h.port, user: 'app', password: '', tls: files, table: 'scenario_via', programName: `mg-${client.name}-via` });
      inputs.set('direct', { ...common, port: directProxy.port, user: MARIADB.user, password: MARIADB.password, tls: null, table: 'scenario_direct', programName: `mg-${client.name}-direct` });
      await client.prepare?.(work.dir);
      await runSide('direct');
      await runSide('via');
      viaConnectionId = Number(outputs.get('via')!.session.connectionId);
    });
    after(async () =>
      cleanup(
        () => h?.stop(),
        () => viaProxy?.close(),
        () => directProxy?.close(),
        () => releasePacketLimit?.(),
        () => work?.remove(),
      ),
    );

    const section = (side: Side, key: string) => outputs.get(side)![key];
    const same = (key: string) => assert.deepEqual(section('via', key), section('direct', key), `${key} differs through meshgate from direct`);

    it('logs in with the workload certificate: its role, on the database it asked for', () => {
      const session = outputs.get('via')!.session;
      assert.equal(session.role, h.roles.rw);
      assert.equal(session.database, h.database);
    });

    it('text results (every column type, NULLs) are as direct', () => {
      assert.equal((section('direct', 'text') as { rows: unknown[] }).rows.length, 3);
      same('text');
    });

    it('utf8mb4 values and column names are as direct', () => {
      assert.match(JSON.stringify(section('direct', 'utf8')), /😀/);
      same('utf8');
    });

    it(`prepared statements are as direct${client.serverPrepared ? ' (server-side: COM_STMT_PREPARE/EXECUTE)' : ' (interpolated by the driver)'}`, async () => {
      same('prepared');
      const commands = await auditedCommands(h, viaConnectionId);
      if (client.serverPrepared) {
        assert.ok(commands.has('prepare') && commands.has('execute'), `expected server-side prepared statements; audited: ${[...commands].join(', ')}`);
      } else {
        assert.ok(!commands.has('prepare'), `the driver was expected to interpolate; audited: ${[...commands].join(', ')}`);
      }
    });

    it('transactions: a rollback leaves nothing, a commit keeps its row, as direct', () => same('transaction'));

    it('CALL with two result sets, and several statements in one query, as direct', () => {
      same('call');
      same('multiStatement');
    });

    it(`errors have MariaDB's code${client.reportsSqlstate ? ' and SQLSTATE' : ''}, as direct, and the session goes on`, () => {
      type Failure = { statement: string; code?: number; sqlstate?: string | null; message?: string; unexpected?: unknown };
      const shape = (side: Side) => (section(side, 'errors') as Failure[]).map(({ statement, code, sqlstate, unexpected }) => ({ statement, code, sqlstate, unexpected }));
      for (const failure of shape('direct')) assert.equal(failure.unexpected, undefined, `${failure.statement} did not fail direct`);
      if (client.reportsSqlstate) for (const failure of shape('direct')) assert.match(String(failure.sqlstate), /^[0-9A-Z]{5}$/);
      assert.deepEqual(shape('via'), shape('direct'));
      same('afterErrors');
    });

    it('error messages are as direct', () => {
      const messages = (side: Side) => (section(side, 'errors') as { statement: string; message?: string }[]).map((e) => ({ statement: e.statement, message: normalizedMessage(e.message ?? '') }));
      assert.deepEqual(messages('via'), messages('direct'));
    });

    it('LOAD DATA LOCAL INFILE where the policy allows it, as direct', () => {
      assert.ok(!('error' in (section('direct', 'localInfile') as object)), JSON.stringify(section('direct', 'localInfile')));
      same('localInfile');
    });

    it('a 20 MiB value (more than one protocol packet) goes and comes back whole, as direct', () => {
      const large = section('via', 'large') as { length: number; serverSha256: string; clientSha256: string; sentSha256: string };
      assert.equal(large.length, LARGE_BYTES);
      assert.equal(large.serverSha256, large.sentSha256);
      assert.equal(large.clientSha256, large.sentSha256);
      same('large');
    });

    it('the sections only this client has are as direct', () => {
      const own = Object.keys(outputs.get('direct')!).filter((key) => !COMMON_SECTIONS.includes(key));
      assert.deepEqual(Object.keys(outputs.get('via')!).sort(), Object.keys(outputs.get('direct')!).sort());
      for (const key of own) same(key);
    });

    it('the connection attributes it sends reach MariaDB as direct, with meshgate_identity and meshgate_session added', () => {
      const clientLogin = (side: Side) => {
        const logins = loginsSeen(side === 'via' ? viaProxy : directProxy).filter((attrs) => (side === 'direct' ? attrs.size > 0 : attrs.has('meshgate_session')));
        assert.ok(logins.length > 0, `no client login reached MariaDB ${side}`);
        return logins[0]!;
      };
      const via = clientLogin('via');
      const direct = clientLogin('direct');
      assert.equal(via.get('meshgate_identity'), `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
      for (const name of client.attributes) assert.ok(direct.has(name), `the client sends no ${name} direct; it sent ${[...direct.keys()].join(', ')}`);
      if (client.sendsProgramName) {
        assert.equal(direct.get('program_name'), inputs.get('direct')!.programName);
        assert.equal(via.get('program_name'), inputs.get('via')!.programName);
      }
      // The process differs between the two runs, and so does whatever names it.
      const stable = (attrs: ReadonlyMap<string, string>) =>
        Object.fromEntries([...attrs].filter(([key]) => !['_pid', '_thread', 'program_name', 'meshgate_identity', 'meshgate_session'].includes(key)).sort());
      assert.deepEqual(stable(via), stable(direct));
    });

    it('audits what it ran under the caller identity', async () => {
      const events = (await h.readAudit()).filter((e) => e.type === 'statement' && e.upstreamConnectionId === viaConnectionId);
      const select = events.find((e) => e.statement === 'SELECT * FROM items ORDER BY id');
      assert.ok(select !== undefined, 'the text SELECT is audited');
      assert.equal((select.identity as { spiffeId: string }).spiffeId, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
      const failed = events.filter((e) => e.error !== null).length;
      assert.ok(failed >= ERROR_STATEMENTS.length, `each failed statement is audited with its error (${failed})`);
    });

    client.extra?.(() => ({
      h,
      dir: work.dir,
      input: (side) => inputs.get(side)!,
      output: (side) => outputs.get(side)!,
      logins: (side) => loginsSeen(side === 'via' ? viaProxy : directProxy),
    }));
  });
}

/** The standard policy, with LOAD DATA LOCAL INFILE allowed for the writer. */
export const SCENARIO_POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: writers }
spec:
  action: ALLOW
  rules:
    - id: orders
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/orders"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}", allowLocalInfile: true } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: readers }
spec:
  action: ALLOW
  rules:
    - id: analytics
      from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/analytics"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{ro}" } }]
`;
