/**
 * `meshgate policy render istio`: reads the policy directory and (optionally) the
 * configuration, renders with the pure src/render-istio, writes the YAML.
 */
import { resolve } from 'node:path';
import { loadConfigFile } from '../../config/load.ts';
import { writeAtomic } from '../../fs-atomic.ts';
import { loadPolicyDir } from '../../policy/index.ts';
import { renderedToYaml, renderIstio } from '../../render-istio/index.ts';
import { UsageError, optionalString, requireString, type CliCommand, type OptionValues } from '../command.ts';
import { POLICY_RENDER_ISTIO } from '../specs/policy-render.ts';

// Kubernetes names: a DNS label for namespaces, a DNS subdomain for object names.
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const OBJECT_NAME = /^[a-z0-9](?:[-a-z0-9.]{0,200}[a-z0-9])?$/;
// A label key (optional DNS prefix, then a name) and value, as Kubernetes accepts them.
const LABEL = /^((?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)=((?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$/;

function list(values: OptionValues, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function parseSelector(options: readonly string[]): Record<string, string> | undefined {
  if (options.length === 0) return undefined;
  const selector: Record<string, string> = {};
  for (const option of options) {
    const match = LABEL.exec(option);
    if (match === null) throw new UsageError(`--selector: expected KEY=VALUE with a Kubernetes label key and value, got ${JSON.stringify(option)}`);
    selector[match[1]!] = match[2]!;
  }
  return selector;
}

function parseNamespaces(options: readonly string[]): string[] {
  const names = options.flatMap((o) => o.split(',')).map((n) => n.trim()).filter((n) => n !== '');
  const bad = names.find((n) => !DNS_LABEL.test(n));
  if (bad !== undefined) throw new UsageError(`--client-namespaces: ${JSON.stringify(bad)} is not a Kubernetes namespace name`);
  return names;
}

const renderIstioCommand: CliCommand = {
  ...POLICY_RENDER_ISTIO,
  async run(values, _positionals, io) {
    const dir = requireString(values, 'dir');
    const namespace = requireString(values, 'namespace');
    if (!DNS_LABEL.test(namespace)) throw new UsageError(`--namespace: ${JSON.stringify(namespace)} is not a Kubernetes namespace name`);
    const name = optionalString(values, 'name') ?? 'meshgate';
    if (!OBJECT_NAME.test(name)) throw new UsageError(`--name: ${JSON.stringify(name)} is not a Kubernetes object name (lower-case letters, digits, "-" and ".")`);
    const selector = parseSelector(list(values, 'selector'));
    const clientNamespaces = parseNamespaces(list(values, 'client-namespaces'));
    const configPath = optionalString(values, 'config');
    const output = optionalString(values, 'output');

    const config = configPath === undefined ? null : loadConfigFile(resolve(io.cwd, configPath), { checkFiles: false });
    const policy = await loadPolicyDir(dir, { cwd: io.cwd });
    const rendered = renderIstio({
      documents: policy.documents,
      config,
      policyVersion: policy.version,
      options: { namespace, name, ...(selector === undefined ? {} : { selector }), ...(clientNamespaces.length === 0 ? {} : { clientNamespaces }) },
    });
    const header = [`Rendered by \`meshgate policy render istio\` from ${dir} (policy version ${policy.version})${configPath === undefined ? '' : ` and ${configPath}`}; edit the policy, not this file.`];
    const yaml = renderedToYaml(rendered, header);
    for (const warning of rendered.warnings) io.err(`warning: ${warning}`);
    if (output === undefined) {
      for (const line of yaml.replace(/\n$/, '').split('\n')) io.out(line);
    } else {
      await writeAtomic(resolve(io.cwd, output), yaml);
      io.err(`wrote ${rendered.resources.length} resources to ${output}`);
    }
    return 0;
  },
};

export const policyRenderCommands: readonly CliCommand[] = [renderIstioCommand];
