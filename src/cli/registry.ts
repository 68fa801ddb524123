import type { CliCommand, CommandSpec } from './command.ts';
import { AGENT, CA_JOIN_TOKEN } from './specs/agent.ts';
import { ANALYZE } from './specs/analyze.ts';
import { AUDIT_KEYGEN, AUDIT_QUERY, AUDIT_TAIL, AUDIT_VERIFY } from './specs/audit.ts';
import { CA_INIT, CA_ISSUE, CA_ISSUE_SERVER, CA_ROTATE } from './specs/ca.ts';
import { CREDS_ISSUE, CREDS_LIST, CREDS_REVOKE, CREDS_ROTATE_ROOT } from './specs/creds.ts';
import { DEMO } from './specs/demo.ts';
import { POLICY_EXPLAIN, POLICY_VALIDATE } from './specs/policy.ts';
import { POLICY_TEST } from './specs/policy-test.ts';
import { POLICY_INIT } from './specs/policy-init.ts';
import { POLICY_DIFF } from './specs/policy-diff.ts';
import { POLICY_RENDER_ISTIO } from './specs/policy-render.ts';
import { PROBE } from './specs/probe.ts';
import { SERVE } from './specs/serve.ts';

/**
 * Commands whose implementation is imported on first run. Implementations pull in database
 * drivers, gRPC and the server (most of a second of loading); help and argument parsing
 * need only the specs, so `meshgate --help` and a typo answer at once.
 */
function lazily(load: () => Promise<readonly CliCommand[]>, specs: readonly CommandSpec[]): CliCommand[] {
  return specs.map((spec) => ({
    ...spec,
    async run(values, positionals, io) {
      const name = spec.path.join(' ');
      const command = (await load()).find((c) => c.path.join(' ') === name);
      if (command === undefined) throw new TypeError(`the module for 'meshgate ${name}' does not export it`);
      return command.run(values, positionals, io);
    },
  }));
}

/**
 * Every `meshgate` subcommand, in the order `meshgate --help` lists them. Each concern's
 * commands live in src/cli/commands/, what they accept and say in src/cli/specs/.
 */
export const COMMANDS: readonly CliCommand[] = [
  ...lazily(async () => [(await import('./commands/serve.ts')).serveCommand], [SERVE]),
  ...lazily(async () => [(await import('./commands/demo.ts')).demoCommand], [DEMO]),
  ...lazily(async () => (await import('./commands/ca.ts')).caCommands, [CA_INIT, CA_ISSUE, CA_ISSUE_SERVER, CA_ROTATE]),
  ...lazily(async () => (await import('./commands/agent.ts')).agentCommands, [CA_JOIN_TOKEN, AGENT]),
  ...lazily(async () => (await import('./commands/policy.ts')).policyCommands, [POLICY_VALIDATE, POLICY_EXPLAIN]),
  ...lazily(async () => [(await import('./commands/policy-test.ts')).policyTestCommand], [POLICY_TEST]),
  ...lazily(async () => [(await import('./commands/policy-init.ts')).policyInitCommand], [POLICY_INIT]),
  ...lazily(async () => [(await import('./commands/policy-diff.ts')).policyDiffCommand], [POLICY_DIFF]),
  ...lazily(async () => (await import('./commands/policy-render.ts')).policyRenderCommands, [POLICY_RENDER_ISTIO]),
  ...lazily(async () => (await import('./commands/audit.ts')).auditCommands, [AUDIT_VERIFY, AUDIT_TAIL, AUDIT_KEYGEN]),
  ...lazily(async () => [(await import('./commands/audit-query.ts')).queryCommand], [AUDIT_QUERY]),
  ...lazily(async () => (await import('./commands/creds.ts')).credsCommands, [CREDS_ISSUE, CREDS_LIST, CREDS_REVOKE, CREDS_ROTATE_ROOT]),
  ...lazily(async () => [(await import('./commands/probe.ts')).probeCommand], [PROBE]),
  ...lazily(async () => [(await import('./commands/analyze.ts')).analyzeCommand], [ANALYZE]),
];
