/**
 * `meshgate policy validate` and `meshgate policy explain`: the two questions an operator
 * asks of a policy directory before it ships (does it load? what would it do to X?).
 */
import { isMeshgateError } from '../../errors/index.ts';
import { loadPolicyDir } from '../../policy/loader.ts';
import { subjectFromPrincipal } from '../../policy/subject.ts';
import type { Explanation, Subject } from '../../policy/types.ts';
import { UsageError, optionalString, requireString, type CliCommand, type CliIO } from '../command.ts';

/** Exit code of `policy explain` for a denial, distinct from 1 (error) and 2 (usage). */
export const EXIT_DENIED = 3;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const validate: CliCommand = {
  path: ['policy', 'validate'],
  summary: 'check that a policy directory loads and compiles',
  usage: 'DIR',
  help: [
    '  DIR                     directory of AccessPolicy documents (*.yaml, *.yml)',
    '',
    'Prints the documents and rules found in each file. Any problem (unknown field, missing',
    'role on an ALLOW rule, duplicate name, YAML syntax) fails with exit code 1 and names',
    'the file, the document and the field.',
  ].join('\n'),
  options: {},
  allowPositionals: true,
  async run(_values, positionals, io) {
    if (positionals.length !== 1) throw new UsageError('expected exactly one policy directory');
    const dir = positionals[0]!;
    const policy = await loadPolicyDir(dir, { cwd: io.cwd });
    const width = Math.max(...policy.files.map((f) => f.name.length));
    let documents = 0;
    for (const file of policy.files) {
      documents += file.documents;
      io.out(`${file.name.padEnd(width)}  ${plural(file.documents, 'document')}, ${plural(file.rules, 'rule')}`);
    }
    io.out(`ok: ${plural(policy.files.length, 'file')}, ${plural(documents, 'document')}, ${plural(policy.ruleCount, 'rule')}`);
    return 0;
  },
};

function parseSubject(principal: string): Subject {
  try {
    return subjectFromPrincipal(principal);
  } catch (error) {
    if (isMeshgateError(error)) throw new UsageError(`--principal: ${error.message}`);
    throw error;
  }
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}

function printExplanation(io: CliIO, explanation: Explanation): void {
  io.out(`decision: ${explanation.allow ? 'ALLOW' : 'DENY'}`);
  io.out(`rule:     ${explanation.ruleId ?? '(none: default deny)'}`);
  io.out(`role:     ${explanation.role ?? '-'}`);
  if (explanation.allow) io.out(`infile:   ${explanation.allowLocalInfile ? 'LOAD DATA LOCAL INFILE allowed' : 'no LOCAL INFILE'}`);
  io.out(`reason:   ${explanation.reason}`);
  io.out('');
  const rows = explanation.trace.map((t) => [t.ruleId, t.action, t.matched ? 'yes' : 'no', t.why]);
  for (const line of table([['RULE', 'ACTION', 'MATCHED', 'WHY'], ...rows])) io.out(line);
}

const explain: CliCommand = {
  path: ['policy', 'explain'],
  summary: 'show what a policy directory decides for one caller and database',
  usage: '--dir DIR --principal ID [--database NAME]',
  help: [
    '  --dir DIR               directory of AccessPolicy documents',
    '  --principal ID          caller: spiffe://<td>/ns/<ns>/sa/<sa> or Istio form <td>/ns/<ns>/sa/<sa>',
    '  --database NAME         database the client names at connect; omit for none',
    '',
    'Prints the decision, the deciding rule, the role and the reason, then every rule in',
    'evaluation order (DENY rules first) with whether it matched and why.',
    `Exit code: 0 when allowed, ${EXIT_DENIED} when denied, 1 when the policy does not load.`,
  ].join('\n'),
  options: {
    dir: { type: 'string' },
    principal: { type: 'string' },
    database: { type: 'string' },
  },
  async run(values, _positionals, io) {
    const dir = requireString(values, 'dir');
    const subject = parseSubject(requireString(values, 'principal'));
    const database = optionalString(values, 'database') ?? null;
    const policy = await loadPolicyDir(dir, { cwd: io.cwd });
    const explanation = policy.explain(subject, { engine: 'mysql', database });
    printExplanation(io, explanation);
    return explanation.allow ? 0 : EXIT_DENIED;
  },
};

export const policyCommands: readonly CliCommand[] = [validate, explain];
