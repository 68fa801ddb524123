/**
 * The probe's MariaDB link: one statement through meshgate, as a workload sends it, carrying
 * a sqlcommenter traceparent with the probe's fresh trace id. The same statement reads what
 * MariaDB's processlist shows for it, so the tag MariaDB saw is checked by the server itself,
 * not inferred: it must name the probe's identity first, and carry the trace id.
 */
import mysql from 'mysql2/promise';
import { formatTraceparent, newSpanId } from '../audit/index.ts';
import { broken, holds, type LinkResult } from './report.ts';

export interface MysqlProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** PEM: the probe's certificate, key, and the bundle meshgate's certificate chains to. */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly timeoutMs: number;
}

/** Marks the probe's statement in processlists, logs and the audit. */
export const PROBE_MARK = 'meshgate probe';

export async function probeMysql(target: MysqlProbeTarget, identity: string, traceId: string): Promise<LinkResult[]> {
  const traceparent = formatTraceparent({ traceId, spanId: newSpanId(), flags: '01' });
  const sql = `SELECT (SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()) AS seen /* ${PROBE_MARK} */ /*traceparent='${traceparent}'*/`;
  let seen: string;
  try {
    const conn = await mysql.createConnection({
      host: target.host,
      port: target.port,
      user: 'probe',
      database: target.database,
      ssl: { cert: target.tls.cert, key: target.tls.key, ca: target.tls.ca, rejectUnauthorized: true },
      connectTimeout: target.timeoutMs,
    });
    try {
      const [rows] = await conn.query({ sql, timeout: target.timeoutMs });
      seen = String((rows as Array<{ seen: unknown }>)[0]?.seen ?? '');
    } finally {
      await conn.end().catch(() => undefined);
    }
  } catch (error) {
    const coded = error as { code?: string; message?: string };
    return [broken('mariadb', `the statement through meshgate at ${target.host}:${target.port} failed: ${coded.message ?? String(error)}; check that meshgate runs, trusts the probe's certificate and that policy allows ${identity} database ${target.database}`)];
  }
  const links: LinkResult[] = [holds('mariadb', `a statement ran through meshgate at ${target.host}:${target.port} on database ${target.database}`)];
  const wanted = `/*meshgate_identity='${encodeURIComponent(identity)}'`;
  if (!seen.trimStart().startsWith(wanted)) {
    links.push(broken('tag', `MariaDB's processlist showed the statement as ${JSON.stringify(seen.slice(0, 160))}: it does not start with meshgate's tag for ${identity} (is audit.tagStatements off?)`));
  } else if (!seen.includes(traceId)) {
    links.push(broken('tag', `MariaDB saw the tag but not the trace id ${traceId}`));
  } else {
    links.push(holds('tag', `MariaDB saw the statement tagged with ${identity} and trace ${traceId}`));
  }
  return links;
}
