/**
 * meshgate's policy and configuration → the Istio resources that keep the network layer
 * consistent with it (docs/istio.md). Pure: no file, no network; the CLI reads and writes.
 */
export { renderIstio, type RenderedIstio, type RenderedResource, type RenderIstioInput, type RenderIstioOptions } from './resources.ts';
export { renderedToYaml } from './yaml.ts';
export { translateSource, type IstioRule, type IstioSource } from './authorization.ts';
export { meshgatePorts, type MeshgatePort, type RenderConfig } from './ports.ts';
