import type { CliCommand } from './command.ts';
import { agentCommands } from './commands/agent.ts';
import { auditCommands } from './commands/audit.ts';
import { caCommands } from './commands/ca.ts';
import { credsCommands } from './commands/creds.ts';
import { demoCommand } from './commands/demo.ts';
import { policyCommands } from './commands/policy.ts';
import { serveCommand } from './commands/serve.ts';

/**
 * Every `meshgate` subcommand. Each concern's commands live in its own module under
 * src/cli/commands/ and are listed here once.
 */
export const COMMANDS: readonly CliCommand[] = [serveCommand, demoCommand, ...caCommands, ...agentCommands, ...policyCommands, ...auditCommands, ...credsCommands];
