/**
 * `${env:NAME}` in a configuration: one ConfigMap for every replica, each reading its own
 * pod name. Unset variables are refused with the field's line; secrets are not expanded here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { expandEnvReferences } from '../../../src/config/env-expand.ts';
import { parseConfigText } from '../../../src/config/load.ts';
import { MeshgateError } from '../../../src/errors/index.ts';

const MINIMAL = (replicaId: string) =>
  [
    'firestore: { port: 0, project: p, tls: plaintext, trustedHops: [127.0.0.6], upstream: { emulator: "127.0.0.1:1" } }',
    'trust: { bundles: [istio/root-cert.pem], trustDomains: [cluster.local] }',
    'policy: { dir: policy }',
    `state: { replicaId: "${replicaId}" }`,
    '',
  ].join('\n');

describe('${env:NAME} in the configuration', () => {
  it('expands references anywhere in a string, with fallbacks and $${ for a literal', () => {
    const env = { POD_NAME: 'meshgate-7d9f-abcde', NS: 'db' };
    const { value, problems } = expandEnvReferences(
      { state: { replicaId: '${env:POD_NAME}' }, upstream: { host: 'mariadb.${env:NS}.svc:${env:PORT:-3306}' }, list: ['$${env:POD_NAME}', 7, true, null] },
      env,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(value, { state: { replicaId: 'meshgate-7d9f-abcde' }, upstream: { host: 'mariadb.db.svc:3306' }, list: ['${env:POD_NAME}', 7, true, null] });
  });

  it('refuses an unset variable and an unknown reference, naming the field and its line', () => {
    assert.throws(
      () => parseConfigText(MINIMAL('${env:MGT_UNSET_POD_NAME}'), '/etc/meshgate/meshgate.yaml', { checkFiles: false, unsetEnv: 'refuse', env: {} }),
      (error: unknown) =>
        error instanceof MeshgateError &&
        error.code === 'MG_CONFIG_INVALID' &&
        /meshgate\.yaml: state\.replicaId: environment variable MGT_UNSET_POD_NAME .*is not set.*\$\{env:MGT_UNSET_POD_NAME:-value\} \(line 4, column 10\)$/.test(error.message),
    );
    assert.throws(() => parseConfigText(MINIMAL('${POD_NAME}'), 'm.yaml', { checkFiles: false, env: {} }), /state\.replicaId: \$\{POD_NAME\} is not a reference meshgate knows; write \$\{env:NAME\}/);
  });

  it('the config takes the expanded value (state.replicaId from the pod name)', () => {
    const config = parseConfigText(MINIMAL('${env:POD_NAME}'), 'm.yaml', { checkFiles: false, env: { POD_NAME: 'meshgate-0' } });
    assert.equal(config.state.replicaId, 'meshgate-0');
  });

  it('tools that read only the shape keep an unset reference as written', () => {
    const config = parseConfigText(MINIMAL('${env:MGT_UNSET}'), 'm.yaml', { checkFiles: false, env: {} });
    assert.equal(config.state.replicaId, '${env:MGT_UNSET}');
  });

  it('text without a reference is returned unchanged (property)', () => {
    fc.assert(
      fc.property(fc.string().filter((text) => !text.includes('${')), (text) => {
        const { value, problems } = expandEnvReferences({ a: [text] }, { X: 'y' });
        assert.deepEqual(value, { a: [text] });
        assert.equal(problems.length, 0);
      }),
    );
  });
});
