/** `meshgate probe`: see ../specs/probe.ts for what it checks and how it exits. */
import { parseDuration } from '../../identity/index.ts';
import { formatReport, passed, runProbe } from '../../probe/index.ts';
import { optionalString, requireString, UsageError, type CliCommand, type CliIO, type OptionValues } from '../command.ts';
import { EXIT_BROKEN, PROBE } from '../specs/probe.ts';

function hostPort(value: string, option: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !(port > 0 && port < 65536)) throw new UsageError(`--${option} must be HOST:PORT, e.g. meshgate.db:3306; got '${value}'`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export const probeCommand: CliCommand = {
  ...PROBE,
  async run(values: OptionValues, _positionals: string[], io: CliIO): Promise<number> {
    const timeoutMs = parseDuration(optionalString(values, 'timeout') ?? '10s', '--timeout') * 1000;
    const audit = optionalString(values, 'audit');
    const admin = optionalString(values, 'admin');
    if (admin !== undefined && !/^https:\/\/[^/]+\/?$/.test(admin)) throw new UsageError(`--admin must be https://HOST:PORT, meshgate's admin API; got '${admin}'`);
    const metrics = optionalString(values, 'metrics');
    if (metrics !== undefined && !/^https?:\/\/[^/]+\/.*/.test(metrics)) throw new UsageError(`--metrics must be meshgate's metrics URL, e.g. http://meshgate.db:9464/metrics; got '${metrics}'`);
    const mysql = optionalString(values, 'mysql');
    const firestore = optionalString(values, 'firestore');
    if (mysql === undefined && firestore === undefined) throw new UsageError('name what to probe: --mysql HOST:PORT --database NAME, --firestore HOST:PORT --project ID, or both');
    if (firestore !== undefined) hostPort(firestore, 'firestore');
    const serverName = optionalString(values, 'server-name');
    const report = await runProbe({
      mysql: mysql === undefined ? null : { ...hostPort(mysql, 'mysql'), database: requireString(values, 'database') },
      firestore:
        firestore === undefined
          ? null
          : { address: firestore, project: requireString(values, 'project'), document: optionalString(values, 'document') ?? 'meshgate-probe/probe', ...(serverName === undefined ? {} : { serverName }) },
      tls: { certFile: requireString(values, 'cert'), keyFile: requireString(values, 'key'), caFile: requireString(values, 'ca') },
      audit: audit === undefined ? null : { file: audit },
      admin: admin === undefined ? null : { url: admin, ...(serverName === undefined ? {} : { serverName }) },
      metrics: metrics === undefined ? null : { url: metrics, ...(serverName === undefined ? {} : { serverName }) },
      timeoutMs,
    });
    if (values['json'] === true) io.out(JSON.stringify(report));
    else for (const line of formatReport(report)) io.out(line);
    return passed(report) ? 0 : EXIT_BROKEN;
  },
};
