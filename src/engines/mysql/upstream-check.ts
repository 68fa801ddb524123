/**
 * The MariaDB upstream at start: does each account meshgate will use log in? The admin
 * account (dynamic credentials) logs in through mysql2, as the lease manager will; each
 * static role account through meshgate's own login, as the relay will. A failure becomes one
 * problem naming the account, MariaDB's error and the fix.
 */
import { access } from 'node:fs/promises';
import mysql from 'mysql2/promise';
import { readSecret } from '../../config/load.ts';
import type { SecretRef, UpstreamConfig } from '../../config/schema.ts';
import { PENDING_SUFFIX } from '../../credentials/index.ts';
import type { MariadbClientTls } from '../../transport/mariadb-client-tls.ts';
import type { UpstreamCheck, UpstreamProblem } from '../../upstream-checks.ts';
import { Capability, Command } from './codec/constants.ts';
import { encodeMessage } from './codec/framer.ts';
import { classifyLoginFailure, type LoginFailure } from './login-failure.ts';
import { connectUpstream, type UpstreamTarget } from './upstream.ts';

interface Account {
  /** `the admin account 'meshgate_admin'`, `role shop_writer's account 'mg_shop_writer'`. */
  readonly label: string;
  readonly user: string;
  /** Where its password comes from, as the operator would fix it. */
  readonly source: string;
  readonly admin: boolean;
  login(target: UpstreamTarget): Promise<void>;
}

const CHECK_CAPABILITIES = Capability.CLIENT_MYSQL | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.TRANSACTIONS;

/** `tls`: upstream.tls loaded; every login of the check goes over it, as meshgate's own will. */
export function mariadbUpstreamCheck(upstream: UpstreamConfig, env: NodeJS.ProcessEnv, tls: MariadbClientTls | null): UpstreamCheck {
  const target: UpstreamTarget = { host: upstream.host, port: upstream.port, connectTimeoutMs: upstream.connectTimeoutMs, tls };
  return {
    async run() {
      // Read on every attempt: `creds rotate-root` may rewrite the file while meshgate waits.
      const accounts = accountsOf(upstream, env);
      const problems: UpstreamProblem[] = [];
      for (const account of accounts) {
        try {
          await account.login(target);
        } catch (error) {
          const failure = classifyLoginFailure(error);
          // Not answering is the server's problem, not the account's: one line says it.
          if (failure.transient && failure.kind !== 'busy') return [...problems, { ...problemOf(failure, target, account, error), account: null }];
          problems.push(problemOf(failure, target, account, error));
        }
      }
      return problems;
    },
  };
}

function accountsOf(upstream: UpstreamConfig, env: NodeJS.ProcessEnv): Account[] {
  const credentials = upstream.credentials;
  if (credentials !== undefined) {
    const ref = credentials.admin.password;
    const user = credentials.admin.user;
    return [
      {
        label: `the admin account '${user}'`,
        user,
        source: `${sourceOf(ref)} (upstream.credentials.admin.password)`,
        admin: true,
        login: (target) => adminLogin(target, user, ref, env),
      },
    ];
  }
  return Object.entries(upstream.roles).map(([role, account]) => ({
    label: `role ${role}'s account '${account.user}'`,
    user: account.user,
    source: `${sourceOf(account.password)} (upstream.roles.${role}.password)`,
    admin: false,
    login: (target: UpstreamTarget) => relayLogin(target, account.user, readSecret(account.password, `upstream.roles.${role}.password`, env)),
  }));
}

function sourceOf(ref: SecretRef): string {
  return 'file' in ref ? ref.file : `environment variable ${ref.env}`;
}

/** A rotation that died half-way leaves the new password beside the file; the lease manager then takes whichever works. */
async function adminLogin(target: UpstreamTarget, user: string, ref: SecretRef, env: NodeJS.ProcessEnv): Promise<void> {
  const password = readSecret(ref, 'upstream.credentials.admin.password', env);
  try {
    await mysql2Login(target, user, password);
  } catch (error) {
    if (!('file' in ref) || classifyLoginFailure(error).kind !== 'password-refused') throw error;
    const pending = { file: ref.file + PENDING_SUFFIX };
    if (!(await access(pending.file).then(() => true, () => false))) throw error;
    await mysql2Login(target, user, readSecret(pending, 'upstream.credentials.admin.password', env)).catch(() => {
      throw error;
    });
  }
}

async function mysql2Login(target: UpstreamTarget, user: string, password: string): Promise<void> {
  const conn = await mysql.createConnection({
    host: target.host,
    port: target.port,
    user,
    password,
    connectTimeout: target.connectTimeoutMs,
    ...target.tls?.mysql2(target.host, target.port),
  });
  await conn.end().catch(() => conn.destroy());
}

async function relayLogin(target: UpstreamTarget, user: string, password: string): Promise<void> {
  const connection = await connectUpstream(target, {
    user,
    password,
    database: null,
    capabilities: CHECK_CAPABILITIES,
    mariadbCapabilities: 0,
    charset: 45, // utf8mb4_general_ci
    maxPacketSize: 16 * 1024 * 1024,
    attributes: new Map(),
  });
  connection.socket.end(encodeMessage(Buffer.from([Command.QUIT]), 0));
  connection.socket.destroySoon();
}

function problemOf(failure: LoginFailure, target: UpstreamTarget, account: Account, error: unknown): UpstreamProblem {
  const where = `MariaDB at ${target.host}:${target.port}`;
  const auth = (problem: string, fix: string): UpstreamProblem => ({
    upstream: 'mariadb',
    address: `${target.host}:${target.port}`,
    account: account.user,
    code: 'MG_UPSTREAM_AUTH_FAILED',
    upstreamError: failure.upstreamError,
    problem,
    fix,
    transient: false,
  });
  const unavailable = (problem: string, fix: string): UpstreamProblem => ({ ...auth(problem, fix), code: 'MG_UPSTREAM_UNAVAILABLE', transient: failure.transient });
  switch (failure.kind) {
    case 'password-refused':
      return auth(
        `${where} refused ${account.label} (${failure.detail})`,
        account.admin
          ? `the password in ${account.source} does not match the account's in MariaDB, or the account does not exist: ` +
              `set it as a MariaDB administrator (ALTER USER '${account.user}'@'…' IDENTIFIED BY '<the password in that file>') or put the account's password there`
          : `check that the account exists in MariaDB and that ${account.source} holds its password`,
      );
    case 'host-not-allowed':
      return auth(`${where} does not let ${account.label} connect from meshgate's host (${failure.detail})`, `create the account for meshgate's host or '%' (CREATE USER '${account.user}'@'<meshgate host>' …)`);
    case 'socket-auth-only':
      return auth(
        `${where} lets ${account.label} log in only through its unix socket (${failure.detail})`,
        `meshgate logs in over TCP with a password: give the account one (ALTER USER '${account.user}'@'…' IDENTIFIED VIA mysql_native_password USING PASSWORD('…')) or use another account`,
      );
    case 'tls':
      return unavailable(
        `TLS with ${where} failed for ${account.label} (${failure.detail})`,
        "MariaDB needs ssl_cert, ssl_key and ssl_ca (have_ssl = YES); upstream.tls.ca must sign MariaDB's ssl_cert (with verify-full, for the name in upstream.host), and MariaDB's ssl_ca must trust upstream.tls.cert",
      );
    case 'nothing-listening':
      return unavailable(`nothing listens on ${target.host}:${target.port} (${failure.detail})`, 'start MariaDB, or point upstream.host and upstream.port at it');
    case 'unknown-host':
      return unavailable(`cannot resolve ${target.host} (${failure.detail})`, 'fix upstream.host, or the DNS name it names');
    case 'no-answer':
      return unavailable(`${where} does not answer (${failure.detail})`, "check that MariaDB runs there and that no firewall or network policy drops meshgate's connections");
    case 'busy':
      return unavailable(`${where} cannot take a login now (${failure.detail})`, 'let its load settle, or raise max_connections');
    case 'other':
      return auth(`${where} did not let ${account.label} log in: ${failure.detail}`, (error as { code?: string }).code?.startsWith('MG_') ? '' : "see MariaDB's error log");
  }
}
