/**
 * `meshgate policy diff OLD NEW`: what a policy change does to whom, for review in a pull
 * request. The analysis is policy/'s (diffPolicies, pure); this file loads, reads the audit
 * for identities actually seen, and prints.
 */
import { resolve } from 'node:path';
import { openJsonlEventSource } from '../../audit/index.ts';
import { diffPolicies, loadPolicyDir, MAX_COMBINED, seenIdentityOf, type DecisionSummary, type DiffIdentity, type PolicyDiff, type SeenIdentity } from '../../policy/index.ts';
import { UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { POLICY_DIFF } from '../specs/policy-diff.ts';

// A log anyone may have edited reaches the terminal only through this.
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

/** Distinct identities the logs name, in the order first seen; notes for stderr. */
async function seenIn(paths: readonly string[], io: CliIO): Promise<SeenIdentity[]> {
  const seen = new Map<string, SeenIdentity>();
  for (const path of paths) {
    const source = await openJsonlEventSource(resolve(io.cwd, path));
    for await (const batch of source.events({ since: null, until: null })) {
      for (const { event } of batch) {
        const identity = seenIdentityOf(event);
        if (identity === null) continue;
        const key = `${identity.principal}\0${identity.authMethod}\0${JSON.stringify(identity.claims ?? null)}`;
        if (!seen.has(key)) seen.set(key, identity);
      }
    }
    for (const note of source.notes()) io.err(`note: ${path}: ${note}`);
  }
  return [...seen.values()];
}

function describeDecision(d: DecisionSummary): string {
  const rule = `[${d.ruleId === null ? 'no rule matches' : clean(d.ruleId)}]`;
  if (!d.allow) return `deny ${rule}`;
  const grant = [
    ...(d.role === null ? [] : [`role ${d.role}`]),
    ...(d.googleServiceAccount === null ? [] : [`as ${d.googleServiceAccount}`]),
    ...(d.serviceClass === null || d.serviceClass === 'default' ? [] : [`class ${d.serviceClass}`]),
    ...(d.allowLocalInfile ? ['local infile'] : []),
  ];
  return `allow${grant.length === 0 ? '' : ` ${grant.join(', ')}`} ${rule}`;
}

/** A dry run's would-be decision; only those that differ from the enforced one are shown. */
function describeDryRun(d: DecisionSummary | null): string {
  return d === null ? 'no dry run' : `would ${describeDecision(d)}`;
}

function describeIdentity(identity: DiffIdentity): string {
  const tags = [
    ...(identity.seenInAudit ? ['seen in audit'] : []),
    ...(identity.namedInPolicy && !identity.synthesized ? ['named in policy'] : []),
    ...(identity.synthesized ? [`stand-in: ${identity.subject.principal} via ${identity.subject.authMethod ?? '?'}`] : []),
  ];
  return `${clean(identity.label)}  (${tags.join('; ')})`;
}

function printTable(diff: PolicyDiff, io: CliIO): void {
  const rows = diff.identities.map(({ identity, lines }) => ({
    header: describeIdentity(identity),
    cells: lines.map((line) =>
      line.dryRun === undefined
        ? [line.kind.toUpperCase(), line.request.label, describeDecision(line.old), describeDecision(line.new)]
        : [line.kind.toUpperCase(), line.request.label, describeDryRun(line.dryRun.old), describeDryRun(line.dryRun.new)],
    ),
  }));
  const widths = [0, 0, 0];
  for (const { cells } of rows) for (const row of cells) for (let i = 0; i < 3; i += 1) widths[i] = Math.max(widths[i]!, row[i]!.length);
  for (const { header, cells } of rows) {
    io.out(header);
    for (const [kind, request, old, next] of cells) io.out(`  ${kind!.padEnd(widths[0]!)}  ${request!.padEnd(widths[1]!)}  ${old!.padEnd(widths[2]!)}  →  ${next}`);
  }
  const { summary, considered } = diff;
  const tried = `${plural(considered.identities, 'identity', 'identities')} × ${plural(considered.requests, 'request')} tried`;
  if (summary.lines === 0) {
    io.out(`no differences (${tried})`);
    return;
  }
  if (rows.length > 0) io.out('');
  const dry = summary.dryRun === 0 ? '' : `; ${summary.dryRun} with dry runs that would decide otherwise`;
  io.out(`${plural(summary.gain, 'identity', 'identities')} gain, ${summary.lose} lose, ${summary.change} change access${dry} (${plural(summary.lines, 'line')}; ${tried})`);
}

/** The JSON document `--json` prints: stable field names, for tools. */
export function diffJson(diff: PolicyDiff): unknown {
  return {
    identities: diff.identities.map(({ identity, lines }) => ({
      label: identity.label,
      principal: identity.subject.principal,
      authMethod: identity.subject.authMethod ?? null,
      ...(identity.subject.claims === undefined ? {} : { claims: identity.subject.claims }),
      synthesized: identity.synthesized,
      namedInPolicy: identity.namedInPolicy,
      seenInAudit: identity.seenInAudit,
      changes: lines.map((line) => ({
        kind: line.kind,
        request: line.request.label,
        ...requestFields(line.request.request),
        old: line.old,
        new: line.new,
        changed: line.changed,
        ...(line.dryRun === undefined ? {} : { dryRun: line.dryRun }),
      })),
    })),
    summary: diff.summary,
    considered: diff.considered,
  };
}

function requestFields(request: PolicyDiff['identities'][number]['lines'][number]['request']['request']): Record<string, unknown> {
  if (request.engine === 'mysql') return { engine: 'mysql', database: request.database, direct: request.direct === true };
  return { engine: 'firestore', firestoreDatabase: request.database, path: request.path, pathKind: request.pathKind, operation: request.operation };
}

function auditPaths(values: OptionValues): string[] {
  const given = values['audit'];
  return Array.isArray(given) ? given.map(String) : [];
}

export const policyDiffCommand: CliCommand = {
  ...POLICY_DIFF,
  async run(values, positionals, io) {
    if (positionals.length !== 2) throw new UsageError(`expected two policy directories, OLD and NEW; got ${positionals.length}`);
    const [oldDir, newDir] = positionals as [string, string];
    const paths = auditPaths(values);
    if (paths.some((p) => p === '')) throw new UsageError('--audit needs a file or directory');
    const before = await loadPolicyDir(oldDir, { cwd: io.cwd });
    const after = await loadPolicyDir(newDir, { cwd: io.cwd });
    const seen = await seenIn(paths, io);
    const diff = diffPolicies(before, after, { seen });
    if (diff.considered.limited) {
      io.err(`note: too many named principals to try each with every token claim and auth method the policies name (over ${MAX_COMBINED} callers); only stand-ins were combined: add --audit to try the callers that exist`);
    }
    if (values['json'] === true) io.out(JSON.stringify(diffJson(diff), null, 2));
    else printTable(diff, io);
    return values['exit-code'] === true && diff.summary.lines > 0 ? 1 : 0;
  },
};
