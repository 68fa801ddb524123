import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentCommands } from '../../../../src/cli/commands/agent.ts';
import { UsageError, type CliIO, type OptionValues } from '../../../../src/cli/command.ts';
import { isMeshgateError } from '../../../../src/errors/index.ts';
import { initCa } from '../../../../src/identity/ca.ts';
import { JoinTokenStore, JOIN_TOKENS_FILE } from '../../../../src/identity/signer/join-tokens.ts';
import { makeTempDir } from '../../../helpers/certs.ts';

const ID = 'spiffe://example.org/vm/builder-1';
/** Where the random part of a token starts. */
const JOIN_TOKEN_BODY = 'mgjoin_'.length;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function coded(code: string, pattern: RegExp) {
  return (error: unknown) => isMeshgateError(error) && error.code === code && pattern.test(error.message);
}

describe('JoinTokenStore', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let caDir: string;
  let store: JoinTokenStore;
  before(async () => {
    tmp = await makeTempDir();
    caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org', now: new Date('2029-12-31T00:00:00Z') });
    store = new JoinTokenStore(caDir);
  });
  after(() => tmp.cleanup());

  it('stores only the SHA-256 of a token, in a 0600 file', async () => {
    const created = await store.create({ spiffeId: ID, ttlSeconds: 3600, now: T0 });
    assert.match(created.token, /^mgjoin_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.expires.toISOString(), at(3600).toISOString());
    const text = await readFile(join(caDir, JOIN_TOKENS_FILE), 'utf8');
    assert.ok(!text.includes(created.token));
    assert.ok(!text.includes(created.token.slice(JOIN_TOKEN_BODY)), 'no part of the secret either');
    assert.ok(text.includes(createHash('sha256').update(created.token).digest('hex')));
    assert.equal((await stat(join(caDir, JOIN_TOKENS_FILE))).mode & 0o777, 0o600);
    assert.ok(!(await readdir(caDir)).some((f) => f.endsWith('.tmp') || f === 'ca.lock'), 'no temp or lock file left behind');
  });

  it('works once: the second redemption is refused as already used', async () => {
    const { token } = await store.create({ spiffeId: ID, now: T0 });
    assert.equal(await store.check(token, at(10)), ID, 'check does not spend it');
    assert.equal(await store.redeem(token, at(10)), ID);
    await assert.rejects(store.redeem(token, at(11)), coded('MG_JOIN_TOKEN_INVALID', /already used at 2030-01-01T00:00:10\.000Z/));
    await assert.rejects(store.check(token, at(11)), coded('MG_JOIN_TOKEN_INVALID', /already used/));
  });

  it('exactly one of many concurrent redemptions wins', async () => {
    const { token } = await store.create({ spiffeId: ID, now: T0 });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.redeem(token, at(5))));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });

  it('refuses an expired token, saying when it expired', async () => {
    const { token } = await store.create({ spiffeId: ID, ttlSeconds: 60, now: T0 });
    await assert.rejects(store.redeem(token, at(60)), coded('MG_JOIN_TOKEN_EXPIRED', /expired at 2030-01-01T00:01:00\.000Z \(now 2030-01-01T00:01:00\.000Z\)/));
    // The next write drops it: an expired token is of no use to keep.
    await store.create({ spiffeId: ID, now: at(61) });
    const hash = createHash('sha256').update(token).digest('hex');
    assert.ok(!(await readFile(join(caDir, JOIN_TOKENS_FILE), 'utf8')).includes(hash));
    await assert.rejects(store.redeem(token, at(61)), coded('MG_JOIN_TOKEN_INVALID', /not known to this CA/));
  });

  it('refuses unknown and malformed tokens without quoting them', async () => {
    const forged = `mgjoin_${'A'.repeat(43)}`;
    await assert.rejects(store.check(forged, T0), (e: unknown) => coded('MG_JOIN_TOKEN_INVALID', /not known/)(e) && !(e as Error).message.includes(forged));
    await assert.rejects(store.check('mgjoin_short', T0), coded('MG_JOIN_TOKEN_INVALID', /not a meshgate join token/));
  });

  it("creates tokens only for workload IDs in the CA's trust domain, for at most 7 days", async () => {
    await assert.rejects(store.create({ spiffeId: 'spiffe://other.org/vm/x', now: T0 }), coded('MG_USAGE', /trust domain/));
    await assert.rejects(store.create({ spiffeId: 'spiffe://example.org', now: T0 }), coded('MG_USAGE', /must name a workload/));
    await assert.rejects(store.create({ spiffeId: 'not-an-id', now: T0 }), { code: 'MG_SPIFFE_ID_INVALID' });
    await assert.rejects(store.create({ spiffeId: ID, ttlSeconds: 8 * 86_400, now: T0 }), coded('MG_USAGE', /longer than 7d/));
    await assert.rejects(new JoinTokenStore(join(tmp.dir, 'nope')).create({ spiffeId: ID }), { code: 'MG_CA_MISSING' });
  });

  it('reports a damaged file instead of guessing', async () => {
    const other = join(tmp.dir, 'ca2');
    await initCa({ dir: other, trustDomain: 'example.org' });
    await writeFile(join(other, JOIN_TOKENS_FILE), '{"version": 9}');
    await assert.rejects(new JoinTokenStore(other).check(`mgjoin_${'A'.repeat(43)}`), coded('MG_CONFIG_INVALID', /not a join-token file/));
  });
});

describe('meshgate ca join-token', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    tmp = await makeTempDir();
    await initCa({ dir: join(tmp.dir, '.meshgate/ca'), trustDomain: 'example.org' });
  });
  after(() => tmp.cleanup());

  const command = agentCommands.find((c) => c.path.join(' ') === 'ca join-token');
  async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    assert.ok(command);
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd: tmp.dir, env: {} };
    const parsed = parseArgs({ args: argv, options: command.options, strict: true });
    return { code: await command.run(parsed.values as OptionValues, parsed.positionals, io), out, err };
  }

  it('prints the token alone on stdout and the details on stderr', async () => {
    const result = await run(['--spiffe-id', ID, '--ttl', '30m']);
    assert.equal(result.code, 0);
    assert.equal(result.out.length, 1);
    assert.match(result.out[0] ?? '', /^mgjoin_/);
    assert.match(result.err.join('\n'), /one-time token for spiffe:\/\/example\.org\/vm\/builder-1, valid until/);
    assert.equal(await new JoinTokenStore(join(tmp.dir, '.meshgate/ca')).check(result.out[0] ?? ''), ID);
  });

  it('documents every option, and calls a malformed ID a usage error', async () => {
    for (const c of agentCommands) for (const option of Object.keys(c.options)) assert.match(c.help, new RegExp(`--${option}\\b`));
    await assert.rejects(run(['--spiffe-id', 'spiffe://Example.org/x']), UsageError);
    await assert.rejects(run(['--spiffe-id', ID, '--ttl', '1 hour']), { code: 'MG_USAGE' });
  });
});
