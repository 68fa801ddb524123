/**
 * `meshgate audit verify`, `tail` and `keygen`. verify reads the whole log (rotated files,
 * signed checkpoints, and with --config --anchor the anchor in the state store) and prints
 * each finding on one line with its file and line. Exit codes: 0 intact, 4 tampered (scripts
 * and cron jobs alert on it), 2 usage, 1 a file could not be read.
 */
import { existsSync } from 'node:fs';
import { anchorIdOf, openAnchorStoreFor } from '../../audit-seal.ts';
import {
  AUDIT_EVENT_TYPES,
  generateSigningKey,
  identitiesOf,
  linesBackward,
  loadPublicKey,
  publicKeyPathOf,
  summarize,
  verifyAuditLog,
  type AuditLogVerification,
  type AuditVerifier,
  type LogFinding,
} from '../../audit/index.ts';
import { verifyPostgresAudit, type PgVerification } from '../../audit-pg/index.ts';
import { loadConfigFile } from '../../config/load.ts';
import type { MeshgateConfig } from '../../config/schema.ts';
import { mgError } from '../../errors/index.ts';
import type { AuditAnchor } from '../../store/index.ts';
import { optionalString, requireString, UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { AUDIT_KEYGEN, AUDIT_TAIL, AUDIT_VERIFY, EXIT_TAMPERED } from '../specs/audit.ts';

function onePath(positionals: string[]): string {
  const [path, ...extra] = positionals;
  if (path === undefined || path === '') throw new UsageError('the audit FILE is required');
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  return path;
}

function unreadable(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UsageError(`no such file: ${path}`);
  return mgError('MG_AUDIT_UNAVAILABLE', `cannot read the audit file ${path} (${code ?? 'unknown error'})`, error);
}

/** More than this many findings is one attack seen many times; the first ones say where. */
const MAX_FINDINGS = 20;

async function publicKeysOf(values: OptionValues, config: MeshgateConfig | null): Promise<AuditVerifier[] | undefined> {
  const given = (values['public-key'] as string[] | undefined) ?? [];
  if (given.length > 0) return Promise.all(given.map((path) => loadPublicKey(path)));
  const signingKey = config?.audit.signingKey;
  if (signingKey !== undefined && existsSync(publicKeyPathOf(signingKey))) return [await loadPublicKey(publicKeyPathOf(signingKey))];
  return undefined;
}

async function anchorOf(values: OptionValues, config: MeshgateConfig | null, io: CliIO): Promise<{ anchor: AuditAnchor; location: string } | undefined> {
  if (values['anchor'] !== true) {
    if (values['anchor-id'] !== undefined) throw new UsageError('--anchor-id goes with --anchor');
    return undefined;
  }
  if (config === null) throw new UsageError('--anchor reads the state store named by --config; pass --config meshgate.yaml');
  const store = await openAnchorStoreFor(config, io.env);
  try {
    const id = optionalString(values, 'anchor-id') ?? anchorIdOf(config);
    const anchor = await store.getAnchor(id);
    if (anchor === null) {
      const ids = (await store.listAnchors()).map((a) => a.id);
      throw new UsageError(`no anchor '${id}' in ${store.location}; anchors there: ${ids.length === 0 ? 'none' : ids.join(', ')}. Pass the right one with --anchor-id`);
    }
    return { anchor, location: store.location };
  } finally {
    await store.close();
  }
}

function where(finding: LogFinding, bare: boolean): string {
  if (finding.file !== null && finding.line !== null) return bare ? ` at line ${finding.line}` : ` at ${finding.file} line ${finding.line}`;
  if (finding.file !== null) return ` in ${finding.file}`;
  return '';
}

function report(result: AuditLogVerification, anchored: { anchor: AuditAnchor; location: string } | undefined, bare: boolean, io: CliIO): number {
  if (!result.ok) {
    for (const finding of result.findings.slice(0, MAX_FINDINGS)) {
      // Edits and breaks say what they are in their message; the others are named up front.
      const kind = finding.kind === 'edited' || finding.kind === 'broken' ? '' : ` (${finding.kind})`;
      io.out(`TAMPERED${kind}${where(finding, bare)}: ${finding.message}`);
    }
    if (result.findings.length > MAX_FINDINGS) io.out(`… and ${result.findings.length - MAX_FINDINGS} more findings`);
    return EXIT_TAMPERED;
  }
  io.out(`ok: ${result.events} events, chain intact`);
  io.out(`last hash: ${result.lastHash}`);
  if (result.files.length > 1) io.out(`files: ${result.files.length} (${result.files[0]} … ${result.files.at(-1)})`);
  const { count, signaturesChecked, keys, last } = result.checkpoints;
  if (count > 0) {
    const signatures = signaturesChecked ? `signatures valid (key ${keys.join(', ')})` : 'signatures not checked';
    io.out(`checkpoints: ${count}, ${signatures}${last === null ? '' : `; the last at seq ${last.seq} (${last.reason})`}`);
  }
  if (anchored !== undefined) io.out(`anchor: seq ${anchored.anchor.seq} of log ${anchored.anchor.stream.slice(0, 12)}… in ${anchored.location}: matches`);
  for (const note of result.notes) io.out(`note: ${note}`);
  return 0;
}

const verify: CliCommand = {
  ...AUDIT_VERIFY,
  async run(values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    const postgres = optionalString(values, 'postgres');
    if (postgres !== undefined) return verifyPostgres(postgres, values, positionals, io);
    if (values['table'] !== undefined || values['replica'] !== undefined) throw new UsageError('--table and --replica go with --postgres');
    const configPath = optionalString(values, 'config');
    const config = configPath === undefined ? null : loadConfigFile(configPath);
    const [given, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const path = given ?? config?.audit.file;
    if (path === undefined || path === '') throw new UsageError('the audit FILE is required (or --config, to take its audit.file)');
    const fromText = optionalString(values, 'from-file');
    const fromFile = fromText === undefined ? 1 : Number(fromText);
    if (!Number.isSafeInteger(fromFile) || fromFile < 1) throw new UsageError('--from-file must be a file number, 1 or more');
    const publicKeys = await publicKeysOf(values, config);
    const anchored = await anchorOf(values, config, io);
    let result;
    try {
      result = await verifyAuditLog(path, { fromFile, ...(publicKeys === undefined ? {} : { publicKeys }), ...(anchored === undefined ? {} : { anchor: anchored.anchor }) });
    } catch (error) {
      throw unreadable(path, error);
    }
    // A lone file with no checkpoints reads as before: `TAMPERED at line N`.
    const bare = result.files.length === 1 && result.checkpoints.count === 0;
    return report(result, anchored, bare, io);
  },
};

async function verifyPostgres(url: string, values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
  const fileOnly = ['public-key', 'config', 'anchor', 'anchor-id', 'from-file'].find((name) => values[name] !== undefined);
  if (positionals.length > 0 || fileOnly !== undefined) throw new UsageError(`--postgres verifies the table, not a file: ${fileOnly === undefined ? `unexpected argument '${positionals[0]}'` : `--${fileOnly} goes with a FILE`}`);
  const table = optionalString(values, 'table');
  const replicas = (values['replica'] as string[] | undefined) ?? [];
  let result: PgVerification;
  try {
    result = await verifyPostgresAudit({ connectionString: url, ...(table === undefined ? {} : { table }), replicas });
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOTABLE') throw new UsageError(`${(error as Error).message}: give the table audit.export.postgres.table names (--table)`);
    throw error;
  }
  for (const finding of result.findings.slice(0, MAX_FINDINGS)) {
    const kind = finding.kind === 'edited' || finding.kind === 'broken' ? '' : ` (${finding.kind})`;
    io.out(`TAMPERED${kind} at replica ${finding.replica} seq ${finding.seq} (file ${finding.file} line ${finding.line}): ${finding.message}`);
  }
  if (result.findings.length > MAX_FINDINGS) io.out(`… and ${result.findings.length - MAX_FINDINGS} more findings`);
  for (const chain of result.replicas) {
    io.out(`${chain.ok ? 'ok' : 'TAMPERED'}: replica ${chain.replica}: ${chain.rows} rows, seq ${chain.firstSeq} to ${chain.lastSeq}${chain.ok ? ', chain intact' : ''}; last hash ${chain.lastHash}`);
  }
  const missing = replicas.filter((r) => !result.replicas.some((c) => c.replica === r));
  for (const note of result.notes) io.out(`note: ${note}`);
  if (result.replicas.length === 0) io.out(`note: ${result.table} holds no rows${replicas.length > 0 ? ` of ${replicas.join(', ')}` : ''}`);
  if (!result.ok) return EXIT_TAMPERED;
  return missing.length > 0 && result.replicas.length === 0 ? 1 : 0;
}

const tail: CliCommand = {
  ...AUDIT_TAIL,
  async run(values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    const path = onePath(positionals);
    const count = Number(values['lines']);
    if (!Number.isSafeInteger(count) || count < 1) throw new UsageError('-n must be a positive integer');
    const type = typeof values['type'] === 'string' ? values['type'] : undefined;
    if (type !== undefined && !(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) {
      throw new UsageError(`--type must be one of ${AUDIT_EVENT_TYPES.join(', ')}`);
    }
    const identity = typeof values['identity'] === 'string' ? values['identity'] : undefined;

    const picked: string[] = [];
    try {
      for await (const { bytes } of linesBackward(path)) {
        if (picked.length >= count) break;
        let event: Record<string, unknown> | null = null;
        try {
          const parsed: unknown = JSON.parse(bytes.toString('utf8'));
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) event = parsed as Record<string, unknown>;
        } catch {
          // Shown as unreadable below, unless a filter would have hidden it anyway.
        }
        if (event === null) {
          if (type === undefined && identity === undefined) picked.push('(a line that is not a JSON event)');
          continue;
        }
        if (type !== undefined && event['type'] !== type) continue;
        if (identity !== undefined && !identitiesOf(event).some((s) => s.includes(identity))) continue;
        picked.push(summarize(event));
      }
    } catch (error) {
      throw unreadable(path, error);
    }
    for (const line of picked.reverse()) io.out(line);
    return 0;
  },
};

const keygen: CliCommand = {
  ...AUDIT_KEYGEN,
  async run(values: OptionValues, positionals: string[], io: CliIO): Promise<number> {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const made = await generateSigningKey(requireString(values, 'out'));
    io.out(`wrote ${made.privateKeyPath} (private, mode 0600) and ${made.publicKeyPath}: key id ${made.keyId}`);
    io.out(`set audit.signingKey: ${made.privateKeyPath} (outside the audit directory); verify with --public-key ${made.publicKeyPath}`);
    return 0;
  },
};

export const auditCommands: readonly CliCommand[] = [verify, tail, keygen];
