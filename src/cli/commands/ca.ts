/**
 * `meshgate ca ...`: the built-in CA, for running without Istio or SPIRE.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { describeLifetime, formatDuration, initCa, issueServerCert, issueSvid, parseDuration, pruneCa, rotateCa, type IssuedCertificate, type RootSummary } from '../../identity/index.ts';
import { optionalString, requireString, UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { CA_INIT, CA_ISSUE, CA_ISSUE_SERVER, CA_ROTATE, DEFAULT_CA_DIR } from '../specs/ca.ts';

/** Paths as the user would type them: relative to where they ran the command when inside it. */
function shown(io: CliIO, path: string): string {
  const rel = relative(io.cwd, path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

function caDir(values: OptionValues, io: CliIO): string {
  return resolve(io.cwd, optionalString(values, 'dir') ?? DEFAULT_CA_DIR);
}

/** `--dns a,b --dns c` → [a, b, c]; undefined when the flag was not given at all. */
function listOption(values: OptionValues, name: string): string[] | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const items = (Array.isArray(raw) ? raw : [raw]).filter((v): v is string => typeof v === 'string');
  return items.flatMap((item) => item.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

function printIssued(io: CliIO, what: string, issued: IssuedCertificate): void {
  io.out(`issued ${what}`);
  io.out(`  SANs:       ${issued.subjectAltNames.join(', ')}`);
  io.out(`  valid:      ${describeLifetime(issued)}, until ${issued.notAfter.toISOString()}`);
  io.out(`  serial:     ${issued.serialNumber}`);
  io.out('wrote:');
  io.out(`  ${shown(io, issued.certPath)}  certificate`);
  io.out(`  ${shown(io, issued.keyPath)}  private key (mode 0600; keep it secret)`);
  io.out(`  ${shown(io, issued.bundlePath)}  trust bundle (the CA roots to verify the other side with)`);
}

const init: CliCommand = {
  ...CA_INIT,
  async run(values, _positionals, io) {
    const trustDomain = requireString(values, 'trust-domain');
    const ttlSeconds = parseDuration(optionalString(values, 'ttl') ?? '365d', '--ttl');
    const result = await initCa({
      dir: caDir(values, io),
      trustDomain,
      ttlDays: ttlSeconds / 86_400,
      force: values['force'] === true,
    });
    const dir = shown(io, result.dir);
    io.out(`created a CA for trust domain ${result.trustDomain} in ${dir}, valid until ${result.notAfter.toISOString()}`);
    io.out('wrote:');
    io.out(`  ${shown(io, result.certPath)}  root certificate (URI SAN spiffe://${result.trustDomain})`);
    io.out(`  ${shown(io, result.keyPath)}  root private key (mode 0600; keep it secret, never commit it)`);
    io.out(`  ${shown(io, result.bundlePath)}  trust bundle: the roots meshgate and clients should trust`);
    io.out(`  ${shown(io, result.metadataPath)}  metadata`);
    io.out(`next: meshgate ca issue --dir ${dir} --spiffe-id spiffe://${result.trustDomain}/ns/<namespace>/sa/<service-account>`);
    return 0;
  },
};

const issue: CliCommand = {
  ...CA_ISSUE,
  async run(values, _positionals, io) {
    const spiffeId = requireString(values, 'spiffe-id');
    const ttlSeconds = parseDuration(optionalString(values, 'ttl') ?? '4h', '--ttl');
    const issued = await issueSvid({
      caDir: caDir(values, io),
      spiffeId,
      ttlSeconds,
      outDir: resolve(io.cwd, optionalString(values, 'out') ?? '.'),
      name: optionalString(values, 'name') ?? 'svid',
    });
    printIssued(io, `an SVID for ${spiffeId}`, issued);
    return 0;
  },
};

const issueServer: CliCommand = {
  ...CA_ISSUE_SERVER,
  async run(values, _positionals, io) {
    const ttlSeconds = parseDuration(optionalString(values, 'ttl') ?? '90d', '--ttl');
    const issued = await issueServerCert({
      caDir: caDir(values, io),
      dnsNames: listOption(values, 'dns'),
      ipAddresses: listOption(values, 'ip'),
      spiffeId: optionalString(values, 'spiffe-id'),
      ttlSeconds,
      outDir: resolve(io.cwd, optionalString(values, 'out') ?? '.'),
      name: optionalString(values, 'name') ?? 'server',
    });
    printIssued(io, 'a server certificate for meshgate', issued);
    return 0;
  },
};

function describeRoot(root: RootSummary): string {
  const until = root.retainUntil === null ? 'no retention date' : `until ${root.retainUntil.toISOString()}`;
  const assumed = root.tracked ? '' : ' (assumed: what it signed before rotation support was not recorded)';
  return `${root.subject} [${root.fingerprint256}] ${until}${assumed}`;
}

function printRoots(io: CliIO, retained: readonly RootSummary[], pruned: readonly RootSummary[], sayNone: boolean): void {
  for (const root of retained) io.out(`  kept in bundle: ${describeRoot(root)}`);
  for (const root of pruned) io.out(`  pruned (its certificates have all expired): ${root.subject} [${root.fingerprint256}]`);
  if (sayNone && retained.length === 0 && pruned.length === 0) io.out('  no earlier roots in the bundle');
}

const rotate: CliCommand = {
  ...CA_ROTATE,
  async run(values, _positionals, io) {
    const dir = caDir(values, io);
    const maxSvidTtlSeconds = parseDuration(optionalString(values, 'max-svid-ttl') ?? '4h', '--max-svid-ttl');
    if (values['prune-only'] === true) {
      if (values['ttl'] !== undefined) throw new UsageError('--ttl has no effect with --prune-only, which creates no root');
      const result = await pruneCa({ dir, maxSvidTtlSeconds });
      io.out(`pruned the trust bundle of the CA in ${shown(io, result.dir)}`);
      printRoots(io, result.retained, result.pruned, true);
      io.out(`wrote ${shown(io, result.bundlePath)}`);
      return 0;
    }
    const ttlSeconds = parseDuration(optionalString(values, 'ttl') ?? '365d', '--ttl');
    const result = await rotateCa({ dir, ttlDays: ttlSeconds / 86_400, maxSvidTtlSeconds });
    io.out(`rotated the CA for trust domain ${result.trustDomain} in ${shown(io, result.dir)}`);
    io.out(`  issuing now:    ${result.current.subject} [${result.current.fingerprint256}], valid until ${result.current.notAfter.toISOString()}`);
    io.out(`  stopped issuing: ${describeRoot(result.previous)}`);
    // The previous root was just reported on its own line.
    printRoots(io, result.retained.filter((r) => r.fingerprint256 !== result.previous.fingerprint256), result.pruned, false);
    io.out('wrote:');
    io.out(`  ${shown(io, result.previous.keyPath)}  previous root private key (mode 0600; no longer used)`);
    io.out(`  ${shown(io, result.previous.certPath)}  previous root certificate`);
    io.out(`  ${shown(io, result.bundlePath)}  trust bundle: the new root and every root still needed`);
    if (!result.previous.tracked) {
      io.out(
        `note: ca.json had no record of what the previous root signed; it stays trusted for ${formatDuration(maxSvidTtlSeconds)} (--max-svid-ttl). Re-issue longer-lived certificates (e.g. issue-server) now.`,
      );
    }
    io.out(`next: re-issue certificates with \`meshgate ca issue --dir ${shown(io, result.dir)} ...\`; prune later with \`meshgate ca rotate --dir ${shown(io, result.dir)} --prune-only\``);
    return 0;
  },
};

export const caCommands: readonly CliCommand[] = [init, issue, issueServer, rotate];
