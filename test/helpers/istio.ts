/**
 * Test helpers for rendered Istio resources: validation against Istio's schemas
 * (@kubernetes-models/istio) and a small model of how a sidecar evaluates the
 * AuthorizationPolicies at L4 for one mTLS caller, to compare with meshgate's decisions.
 */
import { AuthorizationPolicy, PeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1';
import { DestinationRule, ServiceEntry, Sidecar } from '@kubernetes-models/istio/networking.istio.io/v1';
import type { RenderedIstio, RenderedResource } from '../../src/render-istio/index.ts';

type Model = { validate(): void; toJSON(): unknown };
const MODELS: Record<string, (data: never) => Model> = {
  PeerAuthentication: (data) => new PeerAuthentication(data),
  AuthorizationPolicy: (data) => new AuthorizationPolicy(data),
  DestinationRule: (data) => new DestinationRule(data),
  Sidecar: (data) => new Sidecar(data),
  ServiceEntry: (data) => new ServiceEntry(data),
};

/** Builds the model for the resource's kind and validates it; throws with the kind and name on a problem. */
export function validateResource(resource: RenderedResource): void {
  const make = MODELS[resource.object.kind];
  if (make === undefined) throw new Error(`no Istio model for kind ${resource.object.kind}`);
  const model = make(resource.object as never);
  try {
    model.validate();
  } catch (error) {
    throw new Error(`${resource.object.kind} ${resource.object.metadata.name}: ${(error as Error).message}`, { cause: error });
  }
  const json = model.toJSON() as { apiVersion: string; kind: string };
  if (json.apiVersion !== resource.object.apiVersion || json.kind !== resource.object.kind) {
    throw new Error(`${resource.object.kind}: the model is ${json.apiVersion} ${json.kind}, not ${resource.object.apiVersion}`);
  }
}

export function validateAll(rendered: RenderedIstio): void {
  for (const resource of rendered.resources) validateResource(resource);
}

export function find(rendered: RenderedIstio, kind: string, name?: string): RenderedResource | undefined {
  return rendered.resources.find((r) => r.object.kind === kind && (name === undefined || r.object.metadata.name === name));
}

interface Source {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
}
interface Rule {
  from?: { source: Source }[];
  to?: { operation: { ports?: string[] } }[];
  when?: { key: string; values?: string[] }[];
}

/** Istio's string match: exact, `*`, prefix `abc*`, suffix `*abc`. */
function matches(patterns: readonly string[], value: string | null): boolean {
  if (value === null) return false;
  return patterns.some((p) => p === '*' || p === value || (p.endsWith('*') && value.startsWith(p.slice(0, -1))) || (p.startsWith('*') && value.endsWith(p.slice(1))));
}

function namespaceOf(principal: string): string | null {
  const parts = principal.split('/');
  return parts.length === 5 && parts[1] === 'ns' && parts[3] === 'sa' ? parts[2]! : null;
}

function sourceMatches(source: Source, principal: string): boolean {
  const ns = namespaceOf(principal);
  if (source.principals !== undefined && !matches(source.principals, principal)) return false;
  if (source.notPrincipals !== undefined && matches(source.notPrincipals, principal)) return false;
  if (source.namespaces !== undefined && !matches(source.namespaces, ns)) return false;
  if (source.notNamespaces !== undefined && matches(source.notNamespaces, ns)) return false;
  return true;
}

function ruleMatches(rule: Rule, principal: string, port: number): boolean {
  if (rule.from !== undefined && !rule.from.some((f) => sourceMatches(f.source, principal))) return false;
  if (rule.to !== undefined && !rule.to.some((t) => t.operation.ports === undefined || t.operation.ports.includes(String(port)))) return false;
  for (const condition of rule.when ?? []) {
    if (condition.key !== 'source.principal') throw new Error(`the model does not know the condition ${condition.key}`);
    if (!matches(condition.values ?? [], principal)) return false;
  }
  return true;
}

/**
 * The sidecar's verdict for an mTLS caller with this Istio principal on this port: DENY
 * policies first, then allowed when no ALLOW policy exists or one of its rules matches.
 */
export function sidecarAllows(rendered: RenderedIstio, principal: string, port: number): boolean {
  const policies = rendered.resources.filter((r) => r.object.kind === 'AuthorizationPolicy').map((r) => r.object.spec as { action: string; rules?: Rule[] });
  if (policies.some((p) => p.action === 'DENY' && (p.rules ?? []).some((rule) => ruleMatches(rule, principal, port)))) return false;
  const allows = policies.filter((p) => p.action === 'ALLOW');
  return allows.length === 0 || allows.some((p) => (p.rules ?? []).some((rule) => ruleMatches(rule, principal, port)));
}

/** Whether a DENY policy refuses this caller on this port. */
export function sidecarDenies(rendered: RenderedIstio, principal: string, port: number): boolean {
  return rendered.resources
    .filter((r) => r.object.kind === 'AuthorizationPolicy' && (r.object.spec as { action: string }).action === 'DENY')
    .some((r) => ((r.object.spec as { rules?: Rule[] }).rules ?? []).some((rule) => ruleMatches(rule, principal, port)));
}
