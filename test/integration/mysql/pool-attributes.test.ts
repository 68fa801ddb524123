/**
 * Connection attributes of pooled connections, on a private MariaDB with performance_schema
 * on (the shared test server has it off, as MariaDB does by default): an idle connection shows
 * as the pool's (program_name meshgate-pool) with the identity its lease is for, and a reused
 * one shows the attributes of the client now using it, as a login would, never the last
 * client's. A client can read its own in performance_schema.session_account_connect_attrs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Capability, RELAYABLE_CAPABILITIES } from '../../../src/engines/mysql/codec/constants.ts';
import { POOL_PROGRAM_NAME } from '../../../src/engines/mysql/pool-exchange.ts';
import { quit, UpstreamPool } from '../../../src/engines/mysql/pool.ts';
import { connectUpstream, type UpstreamConnection, type UpstreamLogin } from '../../../src/engines/mysql/upstream.ts';
import { cleanup } from '../../helpers/cleanup.ts';
import { privateMariadbMissing, startPrivateMariadb, type PrivateMariadb } from '../../helpers/private-mariadb.ts';

const missing = privateMariadbMissing();

describe('pooled connections and their connection attributes (performance_schema on)', { skip: missing ?? false, timeout: 120_000 }, () => {
  let server: PrivateMariadb | undefined;
  let pool: UpstreamPool | undefined;
  const opened: UpstreamConnection[] = [];
  const password = 'pool-attributes-password';
  const login = (attributes: Record<string, string>): UpstreamLogin => ({
    user: 'pooled',
    password,
    database: 'shop',
    // What mysql2 sends, less what meshgate never relays upstream.
    capabilities: (RELAYABLE_CAPABILITIES & ~(Capability.SSL | Capability.LOCAL_FILES | Capability.NO_SCHEMA | Capability.INTERACTIVE)) >>> 0,
    mariadbCapabilities: 0,
    charset: 224,
    maxPacketSize: 16 * 1024 * 1024,
    attributes: new Map(Object.entries(attributes)),
  });
  const attributesOf = async (id: number) => {
    const rows = await server!.admin<{ ATTR_NAME: string; ATTR_VALUE: string }[]>(
      'SELECT ATTR_NAME, ATTR_VALUE FROM performance_schema.session_connect_attrs WHERE PROCESSLIST_ID = ? ORDER BY ATTR_NAME',
      [id],
    );
    return Object.fromEntries(rows.map((r) => [r.ATTR_NAME, r.ATTR_VALUE]));
  };

  before(async () => {
    server = await startPrivateMariadb({ performanceSchema: true });
    await server.admin('CREATE DATABASE shop');
    await server.admin('CREATE ROLE shop_reader');
    await server.admin('GRANT SELECT ON shop.* TO shop_reader');
    await server.admin(`CREATE USER pooled@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(?)`, [password]);
    await server.admin(`GRANT shop_reader TO pooled@'%'`);
    await server.admin(`SET DEFAULT ROLE shop_reader FOR pooled@'%'`);
    pool = new UpstreamPool({ maxIdlePerKey: 4, idleTimeoutMs: 60_000, isLeaseUsable: () => true });
  });
  after(async () => {
    await cleanup(
      () => pool?.close(),
      () => opened.forEach((connection) => quit(connection)),
      () => server?.stop(),
    );
  });

  it('an idle connection shows as the pool’s; a reused one shows its new client’s attributes only', async () => {
    const target = { host: server!.host, port: server!.port, connectTimeoutMs: 5000 };
    const first = login({ _client_name: 'first-client', program_name: 'orders-api', meshgate_identity: 'spiffe://t/ns/shop/sa/orders', meshgate_session: 'one' });
    const connection = await connectUpstream(target, first);
    opened.push(connection);
    const id = connection.connectionId;
    assert.deepEqual(await attributesOf(id), Object.fromEntries(first.attributes));

    pool!.give(first, connection, null);
    for (let i = 0; i < 200 && pool!.idleCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool!.idleCount, 1, 'parked');
    assert.deepEqual(await attributesOf(id), { meshgate_identity: 'spiffe://t/ns/shop/sa/orders', program_name: POOL_PROGRAM_NAME });
    const [processlist] = await server!.admin<{ DB: string | null; COMMAND: string }[]>('SELECT DB, COMMAND FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
    assert.deepEqual({ ...processlist }, { DB: null, COMMAND: 'Sleep' });

    const second = login({ _client_name: 'second-client', meshgate_identity: 'spiffe://t/ns/shop/sa/orders', meshgate_session: 'two' });
    const reused = await pool!.take(second);
    assert.ok(reused !== null, 'reused');
    assert.equal(reused.connectionId, id);
    assert.deepEqual(await attributesOf(id), Object.fromEntries(second.attributes));
  });
});
