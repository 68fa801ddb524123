/**
 * The engine registry: each engine finds its own config section, only engines the config
 * turns on are started, and a start that fails part-way closes the engines already running.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema, type MeshgateConfig, type MeshgateConfigInput } from '../../../src/config/schema.ts';
import { ENGINES, startEngines, type Engine, type EngineDeps, type RunningEngine } from '../../../src/engines/index.ts';
import { firestoreEngine } from '../../../src/engines/firestore/index.ts';
import { mysqlEngine } from '../../../src/engines/mysql/index.ts';
import { captureLog } from '../../helpers/log.ts';

const BASE: MeshgateConfigInput = {
  trust: { bundles: ['bundle.pem'], trustDomains: ['cluster.local'] },
  policy: { dir: 'policy' },
};
type Sections = Partial<MeshgateConfigInput>;
const MYSQL: Sections = {
  listener: { port: 0, tls: { cert: 'server.crt', key: 'server.key' } },
  upstream: { roles: { r: { user: 'u', password: { env: 'P' } } } },
};
const FIRESTORE: Sections = { tls: { cert: 'server.crt', key: 'server.key' }, firestore: { project: 'p', upstream: { emulator: '127.0.0.1:8080' } } };

/** The schema alone (defaults filled, no files looked at): what configOf reads. */
const configOf = (...parts: Sections[]): MeshgateConfig => configSchema.parse(Object.assign({}, BASE, ...parts));

describe('the engine registry', () => {
  it('has the MySQL and the Firestore engine, in that order', () => {
    assert.deepEqual(
      ENGINES.map((engine) => engine.name),
      ['mysql', 'firestore'],
    );
  });

  it('configOf picks each engine its own sections, and nothing for an engine the config leaves out', () => {
    const mysqlOnly = configOf(MYSQL);
    const section = mysqlEngine.configOf(mysqlOnly);
    assert.equal(section?.listener, mysqlOnly.listener);
    assert.equal(section?.upstream, mysqlOnly.upstream);
    assert.equal(section?.tagStatements, true, 'audit.tagStatements, defaulted');
    assert.equal(firestoreEngine.configOf(mysqlOnly), undefined, 'a MySQL-only config needs no Firestore settings');

    const firestoreOnly = configOf(FIRESTORE);
    assert.equal(mysqlEngine.configOf(firestoreOnly), undefined, 'no listener, no upstream: no MySQL engine');
    assert.equal(firestoreEngine.configOf(firestoreOnly), firestoreOnly.firestore);

    const both = configOf(MYSQL, { firestore: FIRESTORE.firestore! });
    assert.ok(mysqlEngine.configOf(both) !== undefined && firestoreEngine.configOf(both) !== undefined);
  });
});

/** An engine that records what happens to it; `fail` makes its start reject. */
function fakeEngine(name: string, section: unknown, events: string[], options: { fail?: Error; failClose?: Error } = {}): Engine<unknown> {
  return {
    name,
    configOf: () => section,
    async start(config) {
      events.push(`start ${name} ${JSON.stringify(config)}`);
      if (options.fail !== undefined) throw options.fail;
      const running: RunningEngine = {
        name,
        endpoints: [{ protocol: 'test', host: '127.0.0.1', port: 1 }],
        logFields: {},
        open: 0,
        async drain() {
          events.push(`drain ${name}`);
        },
        async close() {
          events.push(`close ${name}`);
          if (options.failClose !== undefined) throw options.failClose;
        },
      };
      return running;
    },
  };
}

function fakeDeps(): { deps: EngineDeps; lines: ReturnType<typeof captureLog>['lines'] } {
  const { log, lines } = captureLog();
  // startEngines itself only logs; the engines here ignore their deps.
  return { deps: { log } as unknown as EngineDeps, lines };
}

describe('startEngines', () => {
  const config = configOf(MYSQL);

  it('starts, in order, only the engines whose section is present, each with its section; handles by name', async () => {
    const events: string[] = [];
    const { deps } = fakeDeps();
    const engines = [fakeEngine('a', { n: 1 }, events), fakeEngine('absent', undefined, events), fakeEngine('b', { n: 2 }, events)] as const;
    const running = await startEngines(config, deps, engines);
    assert.deepEqual(events, ['start a {"n":1}', 'start b {"n":2}']);
    assert.deepEqual(Object.keys(running.byName), ['a', 'b']);
    assert.deepEqual(
      running.all.map((engine) => engine.name),
      ['a', 'b'],
    );
    await running.close();
    assert.deepEqual(events.slice(2), ['close b', 'close a'], 'closed last started first');
    await running.close();
    assert.equal(events.length, 4, 'a second close closes nothing again');
  });

  it('a start that fails closes the engines already running, last first, and rejects with its error', async () => {
    const events: string[] = [];
    const { deps } = fakeDeps();
    const boom = new Error('port taken');
    const engines = [fakeEngine('a', {}, events), fakeEngine('b', {}, events), fakeEngine('c', {}, events, { fail: boom }), fakeEngine('d', {}, events)];
    await assert.rejects(startEngines(config, deps, engines), (error) => error === boom);
    assert.deepEqual(events, ['start a {}', 'start b {}', 'start c {}', 'close b', 'close a'], 'd never starts; c, which failed, is not closed');
  });

  it('the start error wins over a close that fails on the way out, which is logged', async () => {
    const events: string[] = [];
    const { deps, lines } = fakeDeps();
    const boom = new Error('upstream down');
    const engines = [fakeEngine('a', {}, events, { failClose: new Error('stuck') }), fakeEngine('b', {}, events, { fail: boom })];
    await assert.rejects(startEngines(config, deps, engines), (error) => error === boom);
    assert.ok(lines.some((line) => line.level === 'error' && String(line['error']).includes('stuck')));
  });

  it('close closes every engine even when one fails, then reports the failure', async () => {
    const events: string[] = [];
    const { deps } = fakeDeps();
    const stuck = new Error('stuck');
    const running = await startEngines(config, deps, [fakeEngine('a', {}, events), fakeEngine('b', {}, events, { failClose: stuck })]);
    await assert.rejects(running.close(), (error) => error === stuck);
    assert.deepEqual(events.slice(2), ['close b', 'close a']);
  });

  it('refuses two engines with one name', async () => {
    const { deps } = fakeDeps();
    await assert.rejects(startEngines(config, deps, [fakeEngine('a', {}, []), fakeEngine('a', {}, [])]), TypeError);
  });
});
