/**
 * mariadb-dump through meshgate, as an operator backs up and restores a schema an application
 * made through meshgate (with per-identity lease accounts): tables and data, a view, a
 * procedure, a function, a trigger and an event.
 *
 * - The same database dumped direct (root) and through meshgate, with the same options, gives
 *   the same bytes.
 * - The same schema made direct gives the same dump as made through meshgate, DEFINER aside:
 *   who created an object is the one thing that rightly differs between the two.
 * - The dump restores through meshgate into a fresh database, and dumping that gives the same
 *   bytes again (its header names the other database); the restored objects work there.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAdmin } from '../../../src/demo/provision.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { clientDir, clientMissing, runOk, runProgram } from '../../helpers/external-clients.ts';
import { MARIADB, startHarness, STANDARD_WORKLOADS, type Harness } from '../../helpers/meshgate.ts';

const skip = await clientMissing('mariadb-dump');

/** What an application's migration would run, with the CLI's DELIMITER for the bodies. */
const SCHEMA = `
CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
  price DECIMAL(10,2), payload BLOB, created DATETIME(3), KEY by_name (name)) ENGINE=InnoDB;
CREATE TABLE audit_log (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(200) CHARACTER SET utf8mb4) ENGINE=InnoDB;
INSERT INTO items (name, price, payload, created) VALUES
  ('plain', 1.50, X'00FF10', '2024-01-02 03:04:05.678'),
  ('héllo wörld 😀 中文', NULL, NULL, NULL),
  ('quote '' and \\\\ backslash', -2.25, X'', '2024-02-29 23:59:59.999');
CREATE VIEW priced AS SELECT id, name, price FROM items WHERE price IS NOT NULL;
DELIMITER //
CREATE PROCEDURE add_item(IN item_name VARCHAR(100), IN item_price DECIMAL(10,2))
BEGIN
  INSERT INTO items (name, price) VALUES (item_name, item_price);
  SELECT LAST_INSERT_ID() AS id;
END//
CREATE FUNCTION with_tax(amount DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN amount * 1.2//
CREATE TRIGGER items_logged AFTER INSERT ON items FOR EACH ROW INSERT INTO audit_log (what) VALUES (CONCAT('added ', NEW.name))//
CREATE EVENT purge_log ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit_log WHERE id < 0//
DELIMITER ;
`;

/** The dump options under test; --skip-dump-date so two dumps can be compared byte for byte. */
const DUMP_OPTIONS = ['--routines', '--triggers', '--events', '--skip-dump-date'];

describe('mariadb-dump through meshgate', { skip }, () => {
  let h: Harness;
  let work: Awaited<ReturnType<typeof clientDir>>;
  /** Made direct by root from the same SCHEMA, for comparison. */
  let directDb: string;
  /** Where the dump made through meshgate is restored, through meshgate. */
  let restoredDb: string;

  const direct = ['--no-defaults', '-h', MARIADB.host, '-P', String(MARIADB.port), '-u', MARIADB.user, ...(MARIADB.password === '' ? [] : [`-p${MARIADB.password}`])];
  const viaMeshgate = () => {
    const files = h.clients.orders!;
    return ['--no-defaults', '-h', '127.0.0.1', '-P', String(h.port), '-u', 'backup', '--ssl', '--ssl-verify-server-cert', `--ssl-ca=${files.ca}`, `--ssl-cert=${files.cert}`, `--ssl-key=${files.key}`];
  };
  const charset = '--default-character-set=utf8mb4';

  /** Dumps `database` to a file and returns its bytes. */
  const dump = async (connection: readonly string[], database: string, name: string): Promise<Buffer> => {
    const file = join(work.dir, `${name}.sql`);
    await runOk('mariadb-dump', [...connection, charset, ...DUMP_OPTIONS, `--result-file=${file}`, database], { timeoutMs: 60_000 });
    return readFile(file);
  };
  /** Feeds an SQL script to the mariadb CLI on stdin, as a restore does; any error fails it. */
  const restore = async (connection: readonly string[], database: string, file: string) =>
    runOk('mariadb', [...connection, charset, '-D', database], { input: await readFile(file), timeoutMs: 60_000 });

  /** `diff -u` of two dumps, for the failure message. */
  const differences = async (a: Buffer, b: Buffer, names: [string, string]) => {
    const [fileA, fileB] = names.map((name) => join(work.dir, `${name}.diff-input`));
    await Promise.all([writeFile(fileA!, a), writeFile(fileB!, b)]);
    const result = await runProgram('diff', ['-u', fileA!, fileB!]);
    return result.stdout.split('\n').slice(0, 80).join('\n');
  };
  const assertSameBytes = async (actual: Buffer, expected: Buffer, what: string) => {
    if (actual.equals(expected)) return;
    assert.fail(`${what}:\n${await differences(expected, actual, ['expected', 'actual'])}`);
  };

  /**
   * The dump with `from` replaced by `to` in its comment lines (the header, and the lines
   * before the events and the routines): the only places a dump names its database.
   */
  const renamed = (bytes: Buffer, from: string, to: string) =>
    Buffer.from(
      bytes
        .toString('latin1')
        .split('\n')
        .map((line) => (line.startsWith('-- ') ? line.replaceAll(from, to) : line))
        .join('\n'),
      'latin1',
    );

  let viaDump: Buffer;

  before(async () => {
    work = await clientDir('mdbdump');
    h = await startHarness({ name: 'mdbdump', workloads: STANDARD_WORKLOADS, credentials: 'dynamic' });
    directDb = `${h.database}_direct`;
    restoredDb = `${h.database}_restored`;
    const root = await connectAdmin(MARIADB);
    try {
      for (const database of [directDb, restoredDb]) await root.query(`CREATE DATABASE \`${database}\``);
      // Views, routines, triggers, events and the dump's LOCK TABLES: the application's role owns its databases.
      for (const database of [h.database, restoredDb]) await root.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO \`${h.roles.rw}\``);
    } finally {
      await root.end();
    }
    const schema = join(work.dir, 'schema.sql');
    await writeFile(schema, SCHEMA);
    await restore(viaMeshgate(), h.database, schema);
    await restore(direct, directDb, schema);
    viaDump = await dump(viaMeshgate(), h.database, 'via');
  });
  after(async () =>
    cleanup(
      async () => {
        const root = await connectAdmin(MARIADB);
        try {
          for (const database of [directDb, restoredDb]) if (database !== undefined) await root.query(`DROP DATABASE IF EXISTS \`${database}\``);
        } finally {
          await root.end();
        }
      },
      () => h?.stop(),
      () => work?.remove(),
    ),
  );

  it('dumps every kind of object through meshgate', () => {
    const text = viaDump.toString('utf8');
    for (const object of ['CREATE TABLE `items`', 'INSERT INTO `items` VALUES', 'VIEW `priced`', 'PROCEDURE `add_item`', 'FUNCTION `with_tax`', 'TRIGGER items_logged', 'EVENT `purge_log`']) {
      assert.ok(text.includes(object), `the dump lacks ${object}`);
    }
  });

  it('the same database dumped direct and through meshgate gives the same bytes', async () => {
    await assertSameBytes(viaDump, await dump(direct, h.database, 'direct-of-via'), 'the dump through meshgate differs from the direct one');
  });

  it('the schema made through meshgate dumps as the same schema made direct, DEFINER aside', async () => {
    // mariadb-dump splits a view's header into version comments only when its DEFINER is a
    // user@host; a role's (no host) it prints in one. Both say the same: one form here.
    const withoutDefiners = (bytes: Buffer) =>
      Buffer.from(
        bytes
          .toString('latin1')
          .replace(/DEFINER=`[^`]*`(@`[^`]*`)?/g, 'DEFINER=?')
          .replace(/\/\*!50001 CREATE ALGORITHM=(\w+) \*\/\n\/\*!50013 DEFINER=\? SQL SECURITY (\w+) \*\/\n\/\*!50001 VIEW/g, '/*!50001 CREATE ALGORITHM=$1 DEFINER=? SQL SECURITY $2 VIEW'),
        'latin1',
      );
    const madeDirect = renamed(await dump(direct, directDb, 'made-direct'), directDb, h.database);
    await assertSameBytes(withoutDefiners(viaDump), withoutDefiners(madeDirect), 'objects made through meshgate differ from the same objects made direct');
  });

  it('names its database only in its comments, and holds no meshgate tag, so it restores into any database', () => {
    const rest = renamed(viaDump, h.database, 'elsewhere').toString('latin1');
    assert.ok(!rest.includes(h.database), `the dump names ${h.database} outside its comments: ${rest.split('\n').filter((line) => line.includes(h.database)).slice(0, 3).join('\n')}`);
    assert.ok(!rest.includes('meshgate_'), `meshgate's statement tag is in the dump: ${rest.split('\n').filter((line) => line.includes('meshgate_')).slice(0, 3).join('\n')}`);
  });

  it('restores through meshgate into a fresh database, which then dumps to the same bytes', async () => {
    await restore(viaMeshgate(), restoredDb, join(work.dir, 'via.sql'));
    const again = await dump(viaMeshgate(), restoredDb, 'restored');
    await assertSameBytes(again, renamed(viaDump, h.database, restoredDb), 'the restored database dumps differently');
  });

  it('the restored objects work in the restored database: view, procedure, function, trigger, event', async () => {
    const sql = (statement: string) => runOk('mariadb', [...viaMeshgate(), charset, '-D', restoredDb, '--batch', '--skip-column-names', '-e', statement], { timeoutMs: 30_000 });
    assert.equal(await sql("CALL add_item('restored', 3.00)"), '4\n');
    assert.equal(await sql('SELECT with_tax(10.00)'), '12.00\n');
    assert.equal(await sql("SELECT name FROM priced WHERE name = 'restored'"), 'restored\n', 'the view reads the restored table');
    assert.equal(await sql('SELECT what FROM audit_log'), 'added restored\n', 'the trigger fired in the restored database');
    assert.equal(await sql('SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()'), 'purge_log\tDISABLED\n');
  });
});
