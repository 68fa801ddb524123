/**
 * The command stages of one session, on stand-ins for the engine context and the session's
 * grant (identity spiffe://test.local/ns/shop/sa/orders in role shop_writer, database shop):
 * what the stage tests send commands through and read the audit of.
 */
import assert from 'node:assert/strict';
import type { StatementFacts } from '../../../src/audit/recorder.ts';
import { CommandStages, type Route, type SessionGrant } from '../../../src/engines/mysql/command-stages.ts';
import { decodeCommand } from '../../../src/engines/mysql/codec/commands.ts';
import { Capability } from '../../../src/engines/mysql/codec/constants.ts';
import { encodeMessage, PacketFramer } from '../../../src/engines/mysql/codec/framer.ts';
import type { MysqlEngineContext } from '../../../src/engines/mysql/context.ts';
import { SessionDirectory } from '../../../src/engines/mysql/directory.ts';

export interface StagesOptions {
  /** The client logged in with CLIENT_MULTI_STATEMENTS. */
  readonly multiStatements?: boolean;
  /** audit.tagStatements. */
  readonly tagStatements: boolean;
  /** audit.statementBytes. */
  readonly statementBytes?: number;
}

/** Large enough for the statements past 64 KiB the tests send. */
const MAX_FRAME = 1 << 25;

export function stagesSession(options: StagesOptions) {
  const audited: StatementFacts[] = [];
  const ctx = {
    profile: { serverVersion: '5.5.5-10.11.19-MariaDB', capabilities: 0xffffffff, mariadbCapabilities: 0, charset: 45 },
    throttle: { admit: () => ({ admitted: true, release() {} }) },
    tagStatements: options.tagStatements,
    auditStatementBytes: options.statementBytes,
    auditParameterBytes: 256,
    queryCacheMode: () => 'off',
    audit: { refusal: () => null, strict: false },
  } as unknown as MysqlEngineContext;
  const grant = {
    request: { sessionId: 's1', connectionId: 1, response: { capabilities: options.multiStatements ? Capability.MULTI_STATEMENTS : 0, database: 'shop' } },
    identity: { spiffeId: 'spiffe://test.local/ns/shop/sa/orders' },
    role: 'shop_writer',
    rule: null,
    serviceClass: 'default',
    allowLocalInfile: false,
    auditParameters: 'types',
    upstreamConnectionId: 7,
    audit: { statement: (facts: StatementFacts) => audited.push(facts), end() {} },
    admission: { admitted: true, release() {} },
  } as unknown as SessionGrant;
  const stages = new CommandStages(ctx, new SessionDirectory(), grant);
  /** Where the stages send a command (`code`, then `body`) from the client. */
  const route = (code: number, body: Buffer | string): Route => {
    const [frame] = new PacketFramer(MAX_FRAME).push(encodeMessage(Buffer.concat([Buffer.of(code), Buffer.from(body)]), 0));
    return stages.onCommand(frame!, decodeCommand(frame!.payload));
  };
  /** The command as it goes upstream (command byte first), its answer given: no error, `statementId` for a prepare. */
  const forward = (code: number, body: Buffer | string, statementId: number | null): Buffer => {
    const r = route(code, body);
    assert.equal(r.kind, 'forward');
    stages.onResponse({ rowsReturned: 0, rowsAffected: 0, error: null, statementId, preparedParameters: statementId === null ? null : 0, status: 0, schema: undefined });
    const [sent] = new PacketFramer(MAX_FRAME).push((r as Extract<Route, { kind: 'forward' }>).bytes);
    return sent!.payload;
  };
  return { route, forward, audited };
}
