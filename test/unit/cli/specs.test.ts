/**
 * The registry describes commands from src/cli/specs/ and loads their implementations when
 * they run: both must describe the same command, and what the specs repeat of a default
 * owned elsewhere must stay equal to it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CliCommand, CommandSpec } from '../../../src/cli/command.ts';
import { agentCommands } from '../../../src/cli/commands/agent.ts';
import { auditCommands } from '../../../src/cli/commands/audit.ts';
import { queryCommand } from '../../../src/cli/commands/audit-query.ts';
import { caCommands } from '../../../src/cli/commands/ca.ts';
import { credsCommands } from '../../../src/cli/commands/creds.ts';
import { demoCommand } from '../../../src/cli/commands/demo.ts';
import { policyCommands } from '../../../src/cli/commands/policy.ts';
import { policyInitCommand } from '../../../src/cli/commands/policy-init.ts';
import { policyTestCommand } from '../../../src/cli/commands/policy-test.ts';
import { policyDiffCommand } from '../../../src/cli/commands/policy-diff.ts';
import { policyRenderCommands } from '../../../src/cli/commands/policy-render.ts';
import { serveCommand } from '../../../src/cli/commands/serve.ts';
import { COMMANDS } from '../../../src/cli/registry.ts';
import { AUDIT_EVENT_TYPES, DECISIONS, ENGINES, OUTCOMES } from '../../../src/audit/index.ts';
import { AUDIT_LISTS } from '../../../src/cli/specs/audit.ts';
import { JOIN_TOKEN_TTL_HELP } from '../../../src/cli/specs/agent.ts';
import { DEMO_DEFAULT_NAME } from '../../../src/cli/specs/demo.ts';
import { DEFAULT_DEMO_NAME } from '../../../src/demo/files.ts';
import { FIRESTORE_DEFAULT_DATABASE as SPEC_FIRESTORE_DEFAULT_DATABASE } from '../../../src/cli/specs/policy.ts';
import { formatDuration } from '../../../src/identity/duration.ts';
import { DEFAULT_JOIN_TOKEN_TTL_SECONDS, MAX_JOIN_TOKEN_TTL_SECONDS } from '../../../src/identity/signer/join-tokens.ts';
import { FIRESTORE_DEFAULT_DATABASE } from '../../../src/policy/schema.ts';
import { captureIO } from '../../helpers/cli.ts';
import { probeCommand } from '../../../src/cli/commands/probe.ts';
import { analyzeCommand } from '../../../src/cli/commands/analyze.ts';
import { ANALYZE_DEFAULT_MIN_DENIALS } from '../../../src/cli/specs/analyze.ts';
import { DEFAULT_MIN_DENIALS } from '../../../src/analyze/index.ts';

const IMPLEMENTATIONS: readonly CliCommand[] = [serveCommand, demoCommand, ...caCommands, ...agentCommands, ...policyCommands, policyTestCommand, policyInitCommand, policyDiffCommand, ...policyRenderCommands, ...auditCommands, queryCommand, ...credsCommands, probeCommand, analyzeCommand];

const specOf = ({ path, summary, usage, help, options, allowPositionals }: CommandSpec) => ({ path, summary, usage, help, options, allowPositionals });

describe('meshgate command specs', () => {
  it('the registry and the implementations name the same commands', () => {
    const name = (c: CommandSpec) => c.path.join(' ');
    assert.deepEqual(COMMANDS.map(name).sort(), IMPLEMENTATIONS.map(name).sort());
  });

  for (const command of COMMANDS) {
    it(`meshgate ${command.path.join(' ')}: the implementation carries the registry's spec`, () => {
      const implementation = IMPLEMENTATIONS.find((c) => c.path.join(' ') === command.path.join(' '));
      assert.ok(implementation);
      assert.deepEqual(specOf(implementation), specOf(command));
    });
  }

  it("a registry command runs its implementation's code", async () => {
    const audit = COMMANDS.find((c) => c.path.join(' ') === 'audit tail')!;
    await assert.rejects(audit.run({ lines: '20' }, [], captureIO()), { name: 'UsageError', message: 'the audit FILE is required' });
  });

  it('the join-token help states the TTL limits the token store enforces', () => {
    assert.deepEqual(JOIN_TOKEN_TTL_HELP, { default: formatDuration(DEFAULT_JOIN_TOKEN_TTL_SECONDS), max: formatDuration(MAX_JOIN_TOKEN_TTL_SECONDS) });
  });

  it('the demo help states the demo name the demo defaults to', () => {
    assert.equal(DEMO_DEFAULT_NAME, DEFAULT_DEMO_NAME);
  });

  it('the audit help lists the event types, decisions, engines and outcomes the audit has', () => {
    assert.deepEqual(AUDIT_LISTS, { types: AUDIT_EVENT_TYPES, decisions: DECISIONS, engines: ENGINES, outcomes: OUTCOMES });
  });

  it('the analyze help states the --min-denials default the analysis uses', () => {
    assert.equal(ANALYZE_DEFAULT_MIN_DENIALS, DEFAULT_MIN_DENIALS);
  });

  it('the policy explain help states the Firestore database the schema defaults to', () => {
    assert.equal(SPEC_FIRESTORE_DEFAULT_DATABASE, FIRESTORE_DEFAULT_DATABASE);
  });
});
