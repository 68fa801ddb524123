/**
 * `meshgate creds ...`: short-lived MariaDB credentials for callers that connect directly
 * (CI jobs, migrations), and lease administration. By default the commands work on the
 * state store and MariaDB themselves (`--config`), so they work whether or not a meshgate
 * server runs (the embedded store is safe across processes); with `--server` they go
 * through a running meshgate's admin API instead. A password is printed once, by
 * `creds issue`, to stdout; it is never logged, stored or printed anywhere else.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { adminRequest, type AdminClientOptions } from '../../admin/client.ts';
import { ADMIN_ROUTES } from '../../admin/api.ts';
import {
  ALL_STATES,
  authorizeAndIssue,
  describeSelector,
  leaseView,
  LIVE_STATES,
  principalSelector,
  ttlMsOf,
  type IssuedView,
  type LeaseView,
} from '../../admin/issue.ts';
import { loadConfigFile } from '../../config/load.ts';
import type { MeshgateConfig, UpstreamConfig } from '../../config/schema.ts';
import { openCredentialRuntime, openStateStore, type CredentialRuntime, type LeaseLog, type RevokeSelector } from '../../credentials/index.ts';
import { mgError } from '../../errors/index.ts';
import { createTokenVerifier, formatDuration } from '../../identity/index.ts';
import { jsonLogger } from '../../log.ts';
import { loadPolicyOnce } from '../../policy-start.ts';
import { optionalString, requireString, UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { CREDS_ISSUE, CREDS_LIST, CREDS_REVOKE, CREDS_ROTATE_ROOT, TOKEN_ENV } from '../specs/creds.ts';

type Target = { readonly kind: 'direct'; readonly path: string; readonly config: MeshgateConfig } | { readonly kind: 'server'; readonly client: AdminClientOptions };

function targetOf(values: OptionValues, io: CliIO): Target {
  const server = optionalString(values, 'server');
  const configPath = optionalString(values, 'config');
  const file = (name: string) => {
    const value = optionalString(values, name);
    return value === undefined ? {} : { [name]: resolve(io.cwd, value) };
  };
  if (server !== undefined) {
    if (configPath !== undefined) throw new UsageError('give --config (work on the state store and MariaDB directly) or --server (go through a running meshgate), not both');
    return { kind: 'server', client: { server, ...file('ca'), ...file('cert'), ...file('key') } };
  }
  for (const name of ['ca', 'cert', 'key']) {
    if (values[name] !== undefined) throw new UsageError(`--${name} applies only with --server`);
  }
  if (configPath === undefined) throw new UsageError('--config is required (or --server URL to go through a running meshgate)');
  const path = resolve(io.cwd, configPath);
  return { kind: 'direct', path, config: loadConfigFile(path) };
}

/** Warnings and errors as JSON lines on stderr; routine progress stays quiet. */
function cliLog(io: CliIO): LeaseLog {
  const json = jsonLogger((line) => io.err(line));
  return { info() {}, warn: json.warn, error: json.error };
}

/** The MariaDB section, when it has dynamic credentials; the commands below need them. */
function requireDynamic(target: { path: string; config: MeshgateConfig }): UpstreamConfig & { credentials: NonNullable<UpstreamConfig['credentials']> } {
  const upstream = target.config.upstream;
  if (upstream?.credentials === undefined) {
    throw mgError('MG_CONFIG_INVALID', `${target.path} has no upstream.credentials: short-lived credentials need meshgate's MariaDB admin account there (see deploy/examples/meshgate.yaml)`);
  }
  return { ...upstream, credentials: upstream.credentials };
}

async function withRuntime<T>(config: MeshgateConfig, io: CliIO, work: (runtime: CredentialRuntime) => Promise<T>): Promise<T> {
  const runtime = await openCredentialRuntime(config, { log: cliLog(io), env: io.env, background: false });
  try {
    return await work(runtime);
  } finally {
    // Issued leases outlive this process; nothing is dropped on the way out.
    await runtime.close();
  }
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// ── creds issue ─────────────────────────────────────────────────────────────────────────

async function tokenOf(values: OptionValues, io: CliIO, optional: boolean): Promise<string | undefined> {
  const inline = optionalString(values, 'token');
  const file = optionalString(values, 'token-file');
  if (inline !== undefined && file !== undefined) throw new UsageError('give the token once: --token or --token-file');
  let token: string | undefined;
  if (file !== undefined) {
    const path = resolve(io.cwd, file);
    try {
      token = (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw mgError('MG_CONFIG_INVALID', `--token-file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (token === '') throw new UsageError(`--token-file ${path} is empty`);
  } else {
    token = inline ?? (io.env[TOKEN_ENV]?.trim() || undefined);
  }
  if (token === undefined && !optional) throw new UsageError(`no token: pass --token-file PATH, set ${TOKEN_ENV}, or pass --token JWT`);
  return token;
}

function printIssued(io: CliIO, view: IssuedView, revokeHint: string): void {
  const seconds = Math.max(0, Math.round((Date.parse(view.expiresAt) - Date.now()) / 1000));
  io.out(`issued a MariaDB credential for ${view.principal} (role ${view.role}${view.ruleId === null ? '' : `, allowed by rule ${view.ruleId}`})`);
  io.out(`  host:      ${view.host}`);
  io.out(`  port:      ${view.port}`);
  io.out(`  username:  ${view.username}`);
  io.out(`  password:  ${view.password}`);
  io.out(`  database:  ${view.database}`);
  io.out(`  lease:     ${view.leaseId}`);
  io.out(`  expires:   ${view.expiresAt} (in ${formatDuration(seconds)})`);
  io.out(`The password is shown only now; the account is dropped at expiry. End it early with: ${revokeHint}`);
}

const issue: CliCommand = {
  ...CREDS_ISSUE,
  async run(values, _positionals, io) {
    const database = requireString(values, 'database');
    const ttlText = optionalString(values, 'ttl');
    const ttlMs = ttlMsOf(ttlText);
    const target = targetOf(values, io);
    let view: IssuedView;
    let revokeHint: string;
    if (target.kind === 'server') {
      const token = await tokenOf(values, io, target.client.cert !== undefined);
      view = (await adminRequest(target.client, {
        method: 'POST',
        path: ADMIN_ROUTES.creds,
        body: { database, ...(ttlText === undefined ? {} : { ttl: ttlText }) },
        ...(token === undefined ? {} : { token }),
      })) as IssuedView;
      revokeHint = `meshgate creds revoke --server ${target.client.server} --lease ${view.leaseId} (an admin's certificate)`;
    } else {
      const token = (await tokenOf(values, io, false)) as string;
      const { config } = target;
      if (config.tokens === undefined) {
        throw mgError('MG_CONFIG_INVALID', `${target.path} has no tokens section: creds issue verifies the caller's token against tokens.issuers; add the issuer that signs it`);
      }
      const upstream = requireDynamic(target);
      const identity = await (await createTokenVerifier(config.tokens)).verify(token);
      const policy = await loadPolicyOnce(config, cliLog(io), io.env);
      // MariaDB and the store are opened only once policy has allowed.
      const opened: { runtime?: CredentialRuntime } = {};
      try {
        view = await authorizeAndIssue({
          identity,
          database,
          ttlMs,
          policy,
          upstream: { host: upstream.host, port: upstream.port },
          leases: {
            issue: async (...args) => {
              opened.runtime = await openCredentialRuntime(config, { log: cliLog(io), env: io.env, background: false });
              return opened.runtime.leases.issue(...args);
            },
          },
        });
      } finally {
        await opened.runtime?.close();
      }
      revokeHint = `meshgate creds revoke -c ${target.path} --lease ${view.leaseId}`;
    }
    if (values['json'] === true) io.out(JSON.stringify(view));
    else printIssued(io, view, revokeHint);
    return 0;
  },
};

// ── creds list ──────────────────────────────────────────────────────────────────────────

const list: CliCommand = {
  ...CREDS_LIST,
  async run(values, _positionals, io) {
    const all = values['all'] === true;
    const target = targetOf(values, io);
    let leases: LeaseView[];
    if (target.kind === 'server') {
      const answer = (await adminRequest(target.client, { method: 'GET', path: `${ADMIN_ROUTES.leases}${all ? '?all=1' : ''}` })) as { leases: LeaseView[] };
      leases = answer.leases;
    } else {
      const store = await openStateStore(target.config, io.env);
      try {
        leases = (await store.listLeases({ states: all ? ALL_STATES : LIVE_STATES })).map(leaseView);
      } finally {
        await store.close();
      }
    }
    if (values['json'] === true) {
      io.out(JSON.stringify({ leases }));
      return 0;
    }
    if (leases.length === 0) {
      io.out(all ? 'no leases' : 'no live leases (--all also lists revoked ones)');
      return 0;
    }
    const rows = leases.map((l) => [l.id, l.purpose, l.principal, l.role, l.username, l.state, l.state === 'revoked' ? `revoked ${l.revokedAt ?? ''}` : l.expiresAt]);
    for (const line of table([['LEASE', 'PURPOSE', 'PRINCIPAL', 'ROLE', 'USERNAME', 'STATE', 'EXPIRES'], ...rows])) io.out(line);
    return 0;
  },
};

// ── creds revoke ────────────────────────────────────────────────────────────────────────

function selectorOf(values: OptionValues): RevokeSelector {
  const leaseId = optionalString(values, 'lease');
  const identity = optionalString(values, 'identity');
  const role = optionalString(values, 'role');
  if (leaseId === undefined && identity === undefined && role === undefined) throw new UsageError('say which leases to revoke: --lease ID, --identity SPIFFE_ID or --role ROLE');
  if (leaseId !== undefined && (identity !== undefined || role !== undefined)) throw new UsageError('--lease names one lease already; give it alone');
  return {
    ...(leaseId === undefined ? {} : { leaseId }),
    ...(identity === undefined ? {} : { principal: principalSelector(identity) }),
    ...(role === undefined ? {} : { role }),
  };
}

function whyNothing(selector: RevokeSelector, lease: LeaseView | null): string {
  if (selector.leaseId === undefined) return `no active lease matches ${describeSelector(selector)}; nothing to revoke`;
  if (lease === null) return `lease ${selector.leaseId} is not active; nothing to revoke`;
  if (lease.state === 'revoked') {
    return `lease ${lease.id} was already revoked${lease.revokedAt === null ? '' : ` at ${lease.revokedAt}`}${lease.revokeReason === null ? '' : ` (${lease.revokeReason})`}; nothing to revoke`;
  }
  return `lease ${lease.id} is ${lease.state} in another process, which finishes it; nothing to revoke`;
}

const revoke: CliCommand = {
  ...CREDS_REVOKE,
  async run(values, _positionals, io) {
    const selector = selectorOf(values);
    const reason = optionalString(values, 'reason');
    const target = targetOf(values, io);
    let revoked: LeaseView[];
    /** What became of a named lease that was not revoked now (null: unknown here). */
    let named: LeaseView | null = null;
    if (target.kind === 'server') {
      const answer = (await adminRequest(target.client, {
        method: 'POST',
        path: ADMIN_ROUTES.revoke,
        body: { ...selector, ...(reason === undefined ? {} : { reason }) },
      })) as { revoked: LeaseView[] };
      revoked = answer.revoked;
      if (revoked.length === 0 && selector.leaseId !== undefined) {
        const all = (await adminRequest(target.client, { method: 'GET', path: `${ADMIN_ROUTES.leases}?all=1` })) as { leases: LeaseView[] };
        named = all.leases.find((l) => l.id === selector.leaseId) ?? null;
      }
    } else {
      requireDynamic(target);
      [revoked, named] = await withRuntime(target.config, io, async (runtime) => {
        const done = (await runtime.leases.revoke(selector, reason ?? 'revoked with meshgate creds revoke')).map(leaseView);
        const lease = done.length === 0 && selector.leaseId !== undefined ? await runtime.store.getLease(selector.leaseId) : null;
        return [done, lease === null ? null : leaseView(lease)] as const;
      });
    }
    if (revoked.length === 0) {
      io.out(whyNothing(selector, named));
      return 0;
    }
    io.out(`revoked ${plural(revoked.length, 'lease')}: MariaDB account${revoked.length === 1 ? '' : 's'} dropped, connections killed`);
    for (const line of table(revoked.map((l) => [`  ${l.id}`, l.purpose, l.principal, l.role, l.username]))) io.out(line);
    return 0;
  },
};

// ── creds rotate-root ───────────────────────────────────────────────────────────────────

const rotateRoot: CliCommand = {
  ...CREDS_ROTATE_ROOT,
  async run(values, _positionals, io) {
    const target = targetOf(values, io);
    let account: { user?: string; file?: string | null };
    if (target.kind === 'server') {
      account = (await adminRequest(target.client, { method: 'POST', path: ADMIN_ROUTES.rotateRoot, body: {} })) as typeof account;
    } else {
      const admin = requireDynamic(target).credentials.admin;
      if (!('file' in admin.password)) {
        throw mgError('MG_CONFIG_INVALID', 'the admin password comes from an environment variable, which meshgate cannot update: use upstream.credentials.admin.password: { file }');
      }
      await withRuntime(target.config, io, (runtime) => runtime.rotateAdmin());
      account = { user: admin.user, file: admin.password.file };
    }
    io.out(`rotated the admin credential of ${account.user ?? "meshgate's admin account"}; the new password is in ${account.file ?? 'the file the config names'}`);
    return 0;
  },
};

export const credsCommands: readonly CliCommand[] = [issue, list, revoke, rotateRoot];
