/**
 * Statements in flight when a session ends (issue 12, point 3). Every statement meshgate
 * forwards to MariaDB has exactly one audit event, whatever ends the session — the client
 * closing mid-statement, MariaDB dropping the connection, meshgate shutting down, a LOCAL
 * INFILE transfer cut short, audit back-pressure — with its outcome (`completed`, `failed`,
 * `unknown`) and the session's true end reason.
 *
 * How "completed" is known after the client left: meshgate keeps reading MariaDB's answer
 * (as a direct MariaDB would keep running the statement) for up to listener.timeouts.drain,
 * then records what MariaDB said; past that bound the statement is `unknown`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { Capability } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage } from '../../../src/engines/mysql/codec/framer.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { DEFAULT_POLICY, MARIADB, startHarness, STANDARD_WORKLOADS, TRUST_DOMAIN, type Harness } from '../../helpers/meshgate.ts';
import { command, openRawSession } from '../../helpers/raw-mysql.ts';
import { serviceMissing } from '../../helpers/services.ts';

const missing = await serviceMissing('mariadb');

type Event = Record<string, unknown> & { type: string; sessionId: string };

const IMPORTER = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/importer`;
const POLICY = `${DEFAULT_POLICY}
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: importer }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["${TRUST_DOMAIN}/ns/shop/sa/importer"] } }]
      to: [{ mariadb: { databases: ["{db}"], role: "{rw}", allowLocalInfile: true } }]
`;

const SETUP = [
  'CREATE TABLE {db}.burst (n INT PRIMARY KEY) ENGINE=InnoDB',
  'CREATE TABLE {db}.slow (n INT PRIMARY KEY, note VARCHAR(40)) ENGINE=InnoDB',
  'CREATE TABLE {db}.loaded (n INT PRIMARY KEY, note VARCHAR(40)) ENGINE=InnoDB',
];

function harness(name: string, drain: string, highWaterEvents?: number): Promise<Harness> {
  return startHarness({
    name,
    workloads: { ...STANDARD_WORKLOADS, importer: IMPORTER },
    policy: POLICY,
    setupSql: SETUP,
    config: (c) => {
      c.listener.timeouts = { drain };
      if (highWaterEvents !== undefined) c.audit = { ...c.audit, highWaterEvents };
    },
  });
}

async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function rootQuery<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const admin = await connectAdmin(MARIADB);
  try {
    const [rows] = await admin.query(sql, params);
    return rows as T[];
  } finally {
    await admin.end();
  }
}

/** Waits until MariaDB runs a statement containing `marker`; its processlist id. */
async function runningUpstream(marker: string): Promise<number> {
  const rows = await waitFor(
    `a statement with ${marker} running in MariaDB`,
    () => rootQuery<{ ID: number }>("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND INFO NOT LIKE '%PROCESSLIST%'", [`%${marker}%`]),
    (found) => found.length === 1,
  );
  return rows[0]!.ID;
}

const statementsOf = (events: Event[], marker: string) => events.filter((e) => e.type === 'statement' && String(e['statement'] ?? '').includes(marker));
const endOf = (events: Event[], sessionId: string) => events.filter((e) => e.type === 'session_end' && e.sessionId === sessionId);

describe('statements in flight when a session ends (real MariaDB)', { skip: missing }, () => {
  let h: Harness;
  const connect = (workload = 'orders') => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl(workload) });

  before(async () => {
    h = await harness('inflight', '3s');
  });
  after(async () => {
    await cleanup(() => h?.stop());
  });

  it('50 connections each send an INSERT and close at once: 50 rows, 50 completed statement events, ended by the clients', async () => {
    const connections = await Promise.all(Array.from({ length: 50 }, () => connect()));
    for (const [i, conn] of connections.entries()) {
      conn.on('error', () => {});
      conn.query(`INSERT INTO burst (n) VALUES (${i}) /*burst-${i}*/`).catch(() => {});
      conn.destroy();
    }
    const rows = await waitFor('50 rows', () => rootQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${h.database}\`.burst`), (r) => r[0]!.n === 50);
    assert.equal(rows[0]!.n, 50);
    const events = await waitFor('50 ended sessions with their statements', () => h.readAudit() as Promise<Event[]>, (all) => {
      const statements = statementsOf(all, 'burst-');
      return statements.length >= 50 && statements.every((s) => endOf(all, s.sessionId).length === 1);
    });
    const statements = statementsOf(events, 'burst-');
    assert.equal(statements.length, 50, 'exactly one event per forwarded INSERT');
    for (const s of statements) {
      assert.equal(s['outcome'], 'completed', JSON.stringify(s));
      assert.equal(s['rowsAffected'], 1);
      assert.equal(s['error'], null);
      const [end] = endOf(events, s.sessionId);
      assert.equal(end!['reason'], 'client closed the connection', 'not "meshgate shut down": meshgate is running');
      assert.equal(end!['statements'], 1);
    }
  });

  it('a client that closes mid-statement: meshgate waits for MariaDB and records what it answered', async () => {
    const conn = await connect();
    conn.on('error', () => {});
    conn.query("INSERT INTO slow (n, note) VALUES (SLEEP(1) + 1, 'slow-insert-marker')").catch(() => {});
    await runningUpstream('slow-insert-marker');
    conn.destroy();
    const events = await waitFor('the statement and the end', () => h.readAudit() as Promise<Event[]>, (all) => {
      const [s] = statementsOf(all, 'slow-insert-marker');
      return s !== undefined && endOf(all, s.sessionId).length === 1;
    });
    const [s] = statementsOf(events, 'slow-insert-marker');
    assert.equal(s!['outcome'], 'completed');
    assert.equal(s!['rowsAffected'], 1);
    assert.equal(endOf(events, s!.sessionId)[0]!['reason'], 'client closed the connection');
    const rows = await rootQuery<{ note: string }>(`SELECT note FROM \`${h.database}\`.slow WHERE n = 1`);
    assert.equal(rows[0]?.note, 'slow-insert-marker', 'the event says what MariaDB did');
  });

  it('a client that closes while MariaDB runs past the drain bound: the statement is unknown, said once', async () => {
    const conn = await connect();
    conn.on('error', () => {});
    conn.query("SELECT SLEEP(8) AS 'past-bound-marker'").catch(() => {});
    const id = await runningUpstream('past-bound-marker');
    const left = Date.now();
    conn.destroy();
    const events = await waitFor('the statement and the end', () => h.readAudit() as Promise<Event[]>, (all) => {
      const [s] = statementsOf(all, 'past-bound-marker');
      return s !== undefined && endOf(all, s.sessionId).length === 1;
    });
    const waited = Date.now() - left;
    const statements = statementsOf(events, 'past-bound-marker');
    assert.equal(statements.length, 1);
    assert.equal(statements[0]!['outcome'], 'unknown');
    assert.equal((statements[0]!['error'] as { code: string }).code, 'MG_OUTCOME_UNKNOWN');
    assert.match((statements[0]!['error'] as { message: string }).message, /client closed the connection.*3 s/);
    assert.equal(endOf(events, statements[0]!.sessionId)[0]!['reason'], 'client closed the connection');
    assert.ok(waited >= 2500 && waited < 6000, `ended after the 3 s bound, not before nor long after (${waited} ms)`);
    // meshgate let go of the upstream connection; MariaDB ends the SLEEP on its own.
    await rootQuery(`KILL QUERY ${id}`).catch(() => undefined);
  });

  it('MariaDB drops the connection mid-statement (KILL from root): failed or unknown, and the end names the upstream', async () => {
    const conn = await connect();
    conn.on('error', () => {});
    const answer = conn.query("SELECT SLEEP(30) AS 'killed-marker'").then(
      () => 'answered',
      (e: { message: string }) => e.message,
    );
    const id = await runningUpstream('killed-marker');
    await rootQuery(`KILL ${id}`);
    assert.notEqual(await answer, 'answered');
    const events = await waitFor('the statement and the end', () => h.readAudit() as Promise<Event[]>, (all) => {
      const [s] = statementsOf(all, 'killed-marker');
      return s !== undefined && endOf(all, s.sessionId).length === 1;
    });
    const statements = statementsOf(events, 'killed-marker');
    assert.equal(statements.length, 1);
    assert.ok(['failed', 'unknown'].includes(String(statements[0]!['outcome'])), JSON.stringify(statements[0]));
    assert.notEqual(statements[0]!['error'], null);
    assert.match(String(endOf(events, statements[0]!.sessionId)[0]!['reason']), /upstream/);
    conn.destroy();
  });

  it('LOCAL INFILE cut short by the client: one event, unknown, and nothing of the file committed', async () => {
    const raw = await openRawSession({ port: h.port, database: h.database, ssl: h.ssl('importer'), deprecateEof: true, extraCapabilities: Capability.LOCAL_FILES });
    raw.send(command.query("LOAD DATA LOCAL INFILE 'cut.csv' INTO TABLE loaded FIELDS TERMINATED BY ',' /*cut-infile-marker*/"));
    const request = await raw.readPacket();
    assert.equal(request[0], 0xfb, 'MariaDB asks for the file');
    // Half of the file (sequence 2), then the client is gone before the empty packet that ends it.
    raw.write(encodeMessage(Buffer.from('1,one\n2,two\n'), 2));
    await new Promise((resolve) => setTimeout(resolve, 200));
    raw.destroy();
    const events = await waitFor('the statement and the end', () => h.readAudit() as Promise<Event[]>, (all) => {
      const [s] = statementsOf(all, 'cut-infile-marker');
      return s !== undefined && endOf(all, s.sessionId).length === 1;
    });
    const statements = statementsOf(events, 'cut-infile-marker');
    assert.equal(statements.length, 1);
    assert.equal(statements[0]!['verb'], 'LOAD');
    assert.equal(statements[0]!['outcome'], 'unknown');
    assert.match((statements[0]!['error'] as { message: string }).message, /file/);
    assert.equal(endOf(events, statements[0]!.sessionId)[0]!['reason'], 'client closed the connection');
    const rows = await waitFor('MariaDB to give the load up', () => rootQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${h.database}\`.loaded WHERE n IN (1, 2)`), () => true);
    assert.equal(rows[0]!.n, 0, 'InnoDB rolled the cut load back');
  });

  it('LOCAL INFILE sent whole, the client closing before the answer: completed, with MariaDB’s row count', async () => {
    const raw = await openRawSession({ port: h.port, database: h.database, ssl: h.ssl('importer'), deprecateEof: true, extraCapabilities: Capability.LOCAL_FILES });
    raw.send(command.query("LOAD DATA LOCAL INFILE 'whole.csv' INTO TABLE loaded FIELDS TERMINATED BY ',' /*whole-infile-marker*/"));
    assert.equal((await raw.readPacket())[0], 0xfb);
    raw.write(Buffer.concat([encodeMessage(Buffer.from('11,eleven\n12,twelve\n13,thirteen\n'), 2), encodeMessage(Buffer.alloc(0), 3)]));
    raw.destroy();
    const events = await waitFor('the statement and the end', () => h.readAudit() as Promise<Event[]>, (all) => {
      const [s] = statementsOf(all, 'whole-infile-marker');
      return s !== undefined && endOf(all, s.sessionId).length === 1;
    });
    const statements = statementsOf(events, 'whole-infile-marker');
    assert.equal(statements.length, 1);
    assert.equal(statements[0]!['outcome'], 'completed');
    assert.equal(statements[0]!['rowsAffected'], 3);
    const rows = await rootQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${h.database}\`.loaded WHERE n BETWEEN 11 AND 13`);
    assert.equal(rows[0]!.n, 3);
  });
});

describe('statements in flight under audit back-pressure (real MariaDB)', { skip: missing }, () => {
  let h: Harness;

  before(async () => {
    // The smallest queue the config allows, so sessions stop reading from their clients and
    // resume as the file catches up while the burst runs; the exact order (a statement waiting
    // in the backlog when its client leaves) is pinned by the relay's unit test.
    h = await harness('inflightbp', '3s', 10);
  });
  after(async () => {
    await cleanup(() => h?.stop());
  });

  it('50 connections each send an INSERT and close at once while audit lags: 50 rows, 50 completed events', async () => {
    const connections = await Promise.all(Array.from({ length: 50 }, () => mysql.createConnection({ host: '127.0.0.1', port: h.port, user: 'u', database: h.database, ssl: h.ssl('orders') })));
    for (const [i, conn] of connections.entries()) {
      conn.on('error', () => {});
      conn.query(`INSERT INTO burst (n) VALUES (${i}) /*bp-${i}*/`).catch(() => {});
      conn.destroy();
    }
    await waitFor('50 rows', () => rootQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${h.database}\`.burst`), (r) => r[0]!.n === 50);
    const events = await waitFor('50 ended sessions with their statements', () => h.readAudit() as Promise<Event[]>, (all) => {
      const statements = statementsOf(all, 'bp-');
      return statements.length >= 50 && statements.every((s) => endOf(all, s.sessionId).length === 1);
    });
    const statements = statementsOf(events, 'bp-');
    assert.equal(statements.length, 50);
    assert.ok(statements.every((s) => s['outcome'] === 'completed' && s['rowsAffected'] === 1));
    assert.ok(statements.every((s) => endOf(events, s.sessionId)[0]!['reason'] === 'client closed the connection'));
  });
});

describe('meshgate shutting down with statements in flight (real MariaDB)', { skip: missing }, () => {
  it('waits for answers due within the drain bound, then records the rest as unknown; every end says shutdown', async () => {
    const h = await harness('inflightsd', '2s');
    try {
      const options = { host: '127.0.0.1', port: h.port, user: 'u', database: h.database };
      const quick = await mysql.createConnection({ ...options, ssl: h.ssl('orders') });
      const long = await mysql.createConnection({ ...options, ssl: h.ssl('orders') });
      const idle = await mysql.createConnection({ ...options, ssl: h.ssl('analytics') });
      for (const conn of [quick, long, idle]) conn.on('error', () => {});
      const quickAnswer = quick.query("INSERT INTO slow (n, note) VALUES (SLEEP(1) + 7, 'shutdown-quick-marker')").then(
        ([result]) => (result as mysql.ResultSetHeader).affectedRows,
        (e: Error) => e.message,
      );
      const longAnswer = long.query("SELECT SLEEP(20) AS 'shutdown-long-marker'").then(
        () => 'answered',
        (e: Error) => e.message,
      );
      const longId = await runningUpstream('shutdown-long-marker');
      await runningUpstream('shutdown-quick-marker');
      const started = Date.now();
      await h.meshgate.close();
      const took = Date.now() - started;
      assert.ok(took < 4000, `shutdown is bounded by the 2 s drain (took ${took} ms)`);
      assert.equal(await quickAnswer, 1, 'the client got the answer due before the bound');
      assert.notEqual(await longAnswer, 'answered');
      const events = (await readFile(h.auditFile, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Event);
      const [q] = statementsOf(events, 'shutdown-quick-marker');
      const [l] = statementsOf(events, 'shutdown-long-marker');
      assert.equal(q?.['outcome'], 'completed');
      assert.equal(l?.['outcome'], 'unknown');
      assert.match((l!['error'] as { message: string }).message, /meshgate shut down/);
      const ends = events.filter((e) => e.type === 'session_end');
      assert.equal(ends.length, 3);
      assert.ok(ends.every((e) => e['reason'] === 'meshgate shut down'), JSON.stringify(ends.map((e) => e['reason'])));
      for (const conn of [quick, long, idle]) conn.destroy();
      await rootQuery(`KILL QUERY ${longId}`).catch(() => undefined);
    } finally {
      await h.stop();
    }
  });
});
