/**
 * `meshgate analyze`: reads the policy and every audit log named, folds the events as they
 * stream (a log larger than memory is fine), asks MariaDB for the roles' grants when told
 * where, and prints the findings; with --suggest, a patch of the policy files, never applied.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { AuditUsage, DEFAULT_MIN_DENIALS, findings, heuristicGrants, readMariadbGrants, renderPatch, renderReport, suggestEdits, type GrantsView } from '../../analyze/index.ts';
import { openJsonlEventSource, type AuditEventSource } from '../../audit/index.ts';
import { loadPolicyDocuments, policyInventory, readPolicyDir } from '../../policy/index.ts';
import { UsageError, optionalString, requireString, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { ANALYZE } from '../specs/analyze.ts';

function minDenialsOf(values: OptionValues): number {
  const text = optionalString(values, 'min-denials');
  if (text === undefined) return DEFAULT_MIN_DENIALS;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--min-denials ${JSON.stringify(text)} is not a positive whole number`);
  return n;
}

function auditPathsOf(values: OptionValues, positionals: string[]): string[] {
  const given = [...((values['audit'] as string[] | undefined) ?? []), ...positionals].filter((path) => path !== '');
  if (given.length === 0) throw new UsageError('--audit FILE|DIR is required: the JSONL audit meshgate writes (audit.file in its configuration)');
  if (values['audit'] === undefined) throw new UsageError(`unexpected argument '${positionals[0]}': name audit logs with --audit`);
  return given;
}

/** A password kept out of the command line (where `ps` shows it) comes from MYSQL_PWD, as for the mariadb client. */
function withPassword(url: string | undefined, password: string | undefined): string | undefined {
  if (url === undefined || password === undefined || password === '') return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('--mariadb is not a URL: give mysql://USER@HOST:PORT/ (the password in MYSQL_PWD, or in the URL)');
  }
  if (parsed.password !== '') return url;
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

export const analyzeCommand: CliCommand = {
  ...ANALYZE,
  async run(values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    const dir = requireString(values, 'policy');
    const paths = auditPathsOf(values, positionals);
    const minDenials = minDenialsOf(values);
    const json = values['json'] === true;
    const suggest = values['suggest'] === true;

    // Named from the working directory, so the patch's `a/…` paths apply where it is run.
    const sources = (await readPolicyDir(dir, { cwd: io.cwd })).map((source) => {
      const name = relative(io.cwd, resolve(io.cwd, source.name));
      return { ...source, name: name.startsWith('..') || isAbsolute(name) ? source.name : name };
    });
    const policy = loadPolicyDocuments(sources, dir);
    const rules = policyInventory(sources);

    // The same log named twice (its active file and a rotated one) is read once.
    const logs = new Map<string, AuditEventSource>();
    for (const path of paths) {
      const source = await openJsonlEventSource(resolve(io.cwd, path));
      if (!logs.has(source.name)) logs.set(source.name, source);
    }

    // Grants before the audit is read: a wrong --mariadb fails before a long read, not after.
    const url = withPassword(optionalString(values, 'mariadb'), io.env['MYSQL_PWD']);
    const roles = [...new Set(rules.flatMap((rule) => rule.mariadb.map((t) => t.role)).filter((role): role is string => role !== null))];
    const grants: GrantsView = url === undefined ? heuristicGrants() : await readMariadbGrants(url, roles);

    const usage = new AuditUsage();
    const notes: string[] = [];
    for (const source of logs.values()) {
      for await (const batch of source.events({ since: null, until: null })) for (const { event } of batch) usage.add(event);
      notes.push(...source.notes());
    }

    const found = findings(rules, usage, grants, { minDenials, policyVersion: policy.version });
    const patch = suggest ? renderPatch(suggestEdits(found, rules, usage), sources) : null;

    if (json) {
      io.out(JSON.stringify({ logs: [...logs.keys()], ...found, ...(patch === null ? {} : { patch }) }));
    } else {
      io.out(`Logs: ${[...logs.keys()].join(', ')}`);
      renderReport(found, io.out);
      if (patch !== null) {
        io.out('');
        io.out(patch === '' ? 'Proposed policy patch: none (nothing to narrow)' : 'Proposed policy patch (review it; meshgate changed nothing — apply with `git apply` or `patch -p1`):');
        if (patch !== '') for (const line of patch.slice(0, -1).split('\n')) io.out(line);
      }
    }
    for (const note of notes) io.err(`note: ${note}`);
    return 0;
  },
};
