/** `meshgate policy render istio`: what it prints, where it writes, and how it refuses. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../../../src/cli/main.ts';
import { captureIO } from '../../helpers/cli.ts';
import { validateResource } from '../../helpers/istio.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;

async function cli(argv: string[]) {
  const io = captureIO(ROOT);
  const code = await runCli(['policy', 'render', 'istio', ...argv], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('meshgate policy render istio', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-render-istio-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints valid Istio YAML for the examples; the config names files that need not exist here', async () => {
    const { code, stdout, stderr } = await cli(['--dir', 'deploy/examples/policy', '--config', 'deploy/examples/meshgate.yaml', '--namespace', 'db', '--selector', 'app=meshgate', '--selector', 'tier=db', '--client-namespaces', 'shop,analytics']);
    assert.equal(code, 0, stderr.join('\n'));
    assert.deepEqual(stderr, []);
    const docs = parseAllDocuments(stdout.join('\n'));
    const objects = docs.map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace: string; annotations: Record<string, string> }; spec: Record<string, any> });
    assert.deepEqual(objects.map((o) => o.kind), ['PeerAuthentication', 'AuthorizationPolicy', 'DestinationRule', 'Sidecar', 'ServiceEntry', 'ServiceEntry']);
    for (const object of objects) {
      validateResource({ object: object as never, comment: [] });
      assert.match(object.metadata.annotations['meshgate.dev/policy-version'] ?? '', /^[0-9a-f]{12}$/);
    }
    assert.deepEqual(objects[0]!.spec['selector'], { matchLabels: { app: 'meshgate', tier: 'db' } });
    assert.deepEqual(objects[2]!.spec['exportTo'], ['analytics', 'shop']);
    assert.match(stdout[0]!, /^# Rendered by `meshgate policy render istio` from deploy\/examples\/policy/);
  });

  it('--output writes the same YAML to a file', async () => {
    const args = ['--dir', 'deploy/examples/policy', '--namespace', 'db', '--name', 'mg'];
    const printed = await cli(args);
    const file = join(dir, 'istio.yaml');
    const written = await cli([...args, '--output', file]);
    assert.equal(written.code, 0);
    assert.deepEqual(written.stdout, []);
    assert.deepEqual(written.stderr, [`wrote 3 resources to ${file}`]);
    assert.equal(await readFile(file, 'utf8'), `${printed.stdout.join('\n')}\n`);
    assert.match(printed.stdout.join('\n'), /name: mg\n/);
  });

  it('refuses bad arguments in one line, exit 2, and a broken policy with exit 1', async () => {
    const usage: [string[], string][] = [
      [['--dir', 'deploy/examples/policy'], '--namespace is required'],
      [['--dir', 'deploy/examples/policy', '--namespace', 'Bad_NS'], '--namespace: "Bad_NS" is not a Kubernetes namespace name'],
      [['--dir', 'deploy/examples/policy', '--namespace', 'db', '--selector', 'app'], '--selector: expected KEY=VALUE with a Kubernetes label key and value, got "app"'],
      [['--dir', 'deploy/examples/policy', '--namespace', 'db', '--client-namespaces', 'shop,-x'], '--client-namespaces: "-x" is not a Kubernetes namespace name'],
    ];
    for (const [argv, message] of usage) {
      const { code, stderr } = await cli(argv);
      assert.equal(code, 2, argv.join(' '));
      assert.deepEqual(stderr, [`meshgate policy render istio: ${message} (see 'meshgate policy render istio --help')`]);
    }
    const broken = await cli(['--dir', join(dir, 'missing'), '--namespace', 'db']);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr.join('\n'), /MG_POLICY_INVALID/);
  });
});
