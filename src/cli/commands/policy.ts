/**
 * `meshgate policy validate` and `meshgate policy explain`: the two questions an operator
 * asks of a policy directory before it ships (does it load? what would it do to X?).
 */
import { isMeshgateError } from '../../errors/index.ts';
import { AUTH_METHODS, FIRESTORE_DEFAULT_DATABASE, FIRESTORE_OPERATIONS, firestorePathKind, firestoreRequestProblem, loadPolicyDir, subjectFromPrincipal, type Explanation, type FirestoreOperation, type PolicyRequest, type Subject } from '../../policy/index.ts';
import { UsageError, optionalString, requireString, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { EXIT_DENIED, POLICY_EXPLAIN, POLICY_VALIDATE } from '../specs/policy.ts';

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const validate: CliCommand = {
  ...POLICY_VALIDATE,
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

// The claim-name rule of the policy schema, so any claim a policy can name can be given here.
const CLAIM_OPTION = /^([A-Za-z0-9_.:-]+)=(.+)$/s;

/** `--claim name=value`, repeatable; a name given twice becomes a list, like `groups`. */
function parseClaims(options: readonly string[]): Record<string, string | string[]> {
  const claims: Record<string, string | string[]> = {};
  for (const option of options) {
    const match = CLAIM_OPTION.exec(option);
    if (match === null || match[1] === '__proto__') {
      throw new UsageError(`--claim: expected name=value with a name of A-Z a-z 0-9 _ . : - and a non-empty value, got ${JSON.stringify(option)}`);
    }
    const [, name = '', value = ''] = match;
    const previous = Object.hasOwn(claims, name) ? claims[name] : undefined;
    claims[name] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return claims;
}

/**
 * The caller as the proxy would see it. Without --auth-method: jwt when claims are given
 * (only tokens carry claims), else mtls, the way a principal alone arrives.
 */
function parseCaller(values: OptionValues): Subject {
  const subject = parseSubject(requireString(values, 'principal'));
  const claimOptions = values.claim;
  const list = Array.isArray(claimOptions) ? claimOptions.filter((c): c is string => typeof c === 'string') : [];
  const method = optionalString(values, 'auth-method') ?? (list.length > 0 ? 'jwt' : 'mtls');
  if (!(AUTH_METHODS as readonly string[]).includes(method)) {
    throw new UsageError(`--auth-method: expected mtls, jwt or xfcc, got ${JSON.stringify(method)}`);
  }
  if (list.length > 0 && method !== 'jwt') throw new UsageError(`--claim: only jwt identities carry claims, but --auth-method is ${method}`);
  return { ...subject, authMethod: method, ...(method === 'jwt' ? { claims: parseClaims(list) } : {}) };
}

/**
 * The request: a MariaDB connection (--database), or one Firestore path (--firestore-path,
 * whose shape gives its kind: even segments a document, odd a collection, a last `**`
 * segment a subtree, another `**` segment a collection group, `/` the database root).
 */
function parseRequest(values: OptionValues): PolicyRequest {
  const path = optionalString(values, 'firestore-path');
  const operation = optionalString(values, 'operation');
  const firestoreDatabase = optionalString(values, 'firestore-database');
  const database = optionalString(values, 'database');
  const direct = values['direct'] === true;
  if (path === undefined) {
    if (operation !== undefined || firestoreDatabase !== undefined) {
      throw new UsageError(`--${operation !== undefined ? 'operation' : 'firestore-database'} needs --firestore-path`);
    }
    return direct ? { engine: 'mysql', database: database ?? null, direct } : { engine: 'mysql', database: database ?? null };
  }
  if (direct) throw new UsageError('--direct asks about MariaDB credentials; it does not go with --firestore-path');
  if (database !== undefined) throw new UsageError('--database names a MariaDB database; with --firestore-path use --firestore-database');
  if (operation === undefined) throw new UsageError('--operation is required with --firestore-path: read, write or admin');
  if (!(FIRESTORE_OPERATIONS as readonly string[]).includes(operation)) {
    throw new UsageError(`--operation: expected read, write or admin, got ${JSON.stringify(operation)}`);
  }
  const relative = path === '/' ? '' : path;
  const request = {
    engine: 'firestore',
    database: firestoreDatabase ?? FIRESTORE_DEFAULT_DATABASE,
    path: relative,
    pathKind: firestorePathKind(relative),
    operation: operation as FirestoreOperation,
  } as const;
  const problem = firestoreRequestProblem(request);
  if (problem !== null) throw new UsageError(`--firestore-path: ${problem}`);
  return request;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}

function printExplanation(io: CliIO, explanation: Explanation, request: PolicyRequest): void {
  io.out(`decision: ${explanation.allow ? 'ALLOW' : 'DENY'}`);
  io.out(`rule:     ${explanation.ruleId ?? '(none: default deny)'}`);
  if (request.engine === 'firestore') {
    io.out(`account:  ${explanation.googleServiceAccount ?? '-'}`);
  } else {
    io.out(`role:     ${explanation.role ?? '-'}`);
    if (request.direct === true) io.out(`direct:   ${explanation.allow ? 'direct credentials allowed' : 'no direct credentials'}`);
    if (explanation.allow) io.out(`infile:   ${explanation.allowLocalInfile ? 'LOAD DATA LOCAL INFILE allowed' : 'no LOCAL INFILE'}`);
    if (explanation.allow) io.out(`params:   prepared statement parameters audited as ${explanation.auditParameters}`);
  }
  if (explanation.traceQueryText !== null) io.out(`spans:    show ${request.engine === 'firestore' ? 'document paths' : 'statement text'} ${explanation.traceQueryText === 'none' ? 'not at all' : explanation.traceQueryText} (traceQueryText)`);
  io.out(`reason:   ${explanation.reason}`);
  const dry = explanation.dryRun;
  if (dry !== null) io.out(`dry run:  ${dry.allow ? 'would ALLOW' : 'would DENY'} by rule ${dry.ruleId ?? '?'} (action AUDIT: recorded, not enforced)`);
  io.out('');
  const rows = explanation.trace.map((t) => [t.ruleId, t.action, t.matched ? 'yes' : 'no', t.why]);
  for (const line of table([['RULE', 'ACTION', 'MATCHED', 'WHY'], ...rows])) io.out(line);
}

const explain: CliCommand = {
  ...POLICY_EXPLAIN,
  async run(values, _positionals, io) {
    const dir = requireString(values, 'dir');
    const subject = parseCaller(values);
    const request = parseRequest(values);
    const policy = await loadPolicyDir(dir, { cwd: io.cwd });
    const explanation = policy.explain(subject, request);
    printExplanation(io, explanation, request);
    return explanation.allow ? 0 : EXIT_DENIED;
  },
};

export const policyCommands: readonly CliCommand[] = [validate, explain];
