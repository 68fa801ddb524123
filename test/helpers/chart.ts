/**
 * deploy/helm/meshgate rendered by a real helm, each object validated against its schema
 * (kubernetes-models for the core kinds, @kubernetes-models/istio, and
 * @kubernetes-models/prometheus-operator for the ServiceMonitor), and meshgate.yaml read back
 * through meshgate's own validator.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1';
import { PeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseConfigText } from '../../src/config/load.ts';
import { configSchema, type MeshgateConfig } from '../../src/config/schema.ts';
import type { Helm } from './helm.ts';

export const CHART = new URL('../../deploy/helm/meshgate', import.meta.url).pathname;
export const NAMESPACE = 'db';
export const RELEASE = 'mg';

/** A rendered object as plain JSON; the fields the tests read are typed loosely on purpose. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: unknown };

type Model = { validate(): void; toJSON(): unknown };
const MODELS: Record<string, (data: never) => Model> = {
  'apps/v1/Deployment': (data) => new Deployment(data),
  'v1/Service': (data) => new Service(data),
  'v1/ConfigMap': (data) => new ConfigMap(data),
  'v1/ServiceAccount': (data) => new ServiceAccount(data),
  'policy/v1/PodDisruptionBudget': (data) => new PodDisruptionBudget(data),
  'monitoring.coreos.com/v1/ServiceMonitor': (data) => new ServiceMonitor(data),
  'security.istio.io/v1/PeerAuthentication': (data) => new PeerAuthentication(data),
  'networking.istio.io/v1/DestinationRule': (data) => new DestinationRule(data),
};

/** Validates the object against its kind's schema; throws naming the kind, name and problem. */
export function validateObject(object: K8sObject): void {
  const make = MODELS[`${object.apiVersion}/${object.kind}`];
  if (make === undefined) throw new Error(`the chart rendered ${object.apiVersion} ${object.kind}, which no schema here covers`);
  const model = make(object as never);
  try {
    model.validate();
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata.name}: ${(error as Error).message}`, { cause: error });
  }
  const json = model.toJSON() as { apiVersion: string; kind: string };
  if (json.apiVersion !== object.apiVersion || json.kind !== object.kind) throw new Error(`${object.kind}: the model is ${json.apiVersion} ${json.kind}`);
}

export interface Rendered {
  readonly objects: readonly K8sObject[];
  find(kind: string, name?: string): K8sObject;
  all(kind: string): K8sObject[];
}

/** Runs helm with a values file written from `values` (YAML text); returns helm's result. */
export function helmWithValues(helm: Helm, args: readonly string[], values: string | null): ReturnType<Helm['run']> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-chart-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, values ?? '{}\n');
    return helm.run([...args, '-f', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template`, parsed; throws with helm's own words when it refuses. */
export function render(helm: Helm, values: string | null): Rendered {
  const result = helmWithValues(helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE], values);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(result.stdout)) {
    if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  const all = (kind: string) => objects.filter((o) => o.kind === kind);
  const find = (kind: string, name?: string) => {
    const found = all(kind).filter((o) => name === undefined || o.metadata.name === name);
    if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, rendered ${found.length}`);
    return found[0]!;
  };
  return { objects, find, all };
}

/** The POD_NAME the downward API would give; what `${env:POD_NAME}` becomes in the pod. */
export const POD_NAME = 'mg-meshgate-7d9c5b-x2x8q';

/**
 * `${env:NAME}` and `${env:NAME:-fallback}` replaced as meshgate's loader does at start, from
 * `env`; an unset variable without a fallback is an error. Done here so the rendered file is
 * validated the way the pod reads it, whether or not this checkout's loader expands them.
 */
export function expandEnv(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$(\$?)\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped: string, name: string, fallback: string | undefined) => {
    if (escaped === '$') return whole.slice(1);
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    throw new Error(`the rendered config names \${env:${name}}, which the pod does not set`);
  });
}

/** Whether this checkout's config schema knows `shutdown` (added to meshgate beside the chart). */
export const SCHEMA_KNOWS_SHUTDOWN = 'shutdown' in configSchema.shape;

/**
 * meshgate.yaml from the config ConfigMap, validated by meshgate's own parseConfigText (files
 * not checked: they exist only in the pod). Environment references are expanded first with
 * the pod's env; `shutdown` is left out when this checkout's schema predates it.
 */
export function meshgateConfig(rendered: Rendered): { text: string; config: MeshgateConfig } {
  const map = rendered.find('ConfigMap', `${RELEASE}-meshgate-config`) as K8sObject & { data: Record<string, string> };
  const text = map.data['meshgate.yaml'];
  if (text === undefined) throw new Error('the config ConfigMap has no meshgate.yaml');
  let checked = expandEnv(text, { POD_NAME });
  if (!SCHEMA_KNOWS_SHUTDOWN) checked = checked.replace(/^shutdown:\n(?: {2}.*\n)+/m, '');
  return { text, config: parseConfigText(checked, '/etc/meshgate/meshgate.yaml', { checkFiles: false }) };
}
