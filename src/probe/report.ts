/**
 * What `meshgate probe` found: one line per link of the chain a synthetic request crosses,
 * each holding, broken (with what to look at), or not checked (and why).
 */

export type LinkName = 'mariadb' | 'tag' | 'audit' | 'span' | 'metrics' | 'firestore' | 'firestore-audit' | 'firestore-span' | 'firestore-metrics';

export interface LinkResult {
  readonly link: LinkName;
  /** null: not checked (the probe was not told where to look). */
  readonly ok: boolean | null;
  readonly detail: string;
}

export interface ProbeReport {
  readonly traceId: string;
  /** The SPIFFE ID the probe's certificate proves: what every link must name. */
  readonly identity: string;
  readonly links: readonly LinkResult[];
}

export function passed(report: ProbeReport): boolean {
  return report.links.every((link) => link.ok !== false);
}

export function holds(link: LinkName, detail: string): LinkResult {
  return { link, ok: true, detail };
}

export function broken(link: LinkName, detail: string): LinkResult {
  return { link, ok: false, detail };
}

export function unchecked(link: LinkName, detail: string): LinkResult {
  return { link, ok: null, detail };
}

/** The report as lines a person reads: one per link, then the verdict. */
export function formatReport(report: ProbeReport): string[] {
  const width = Math.max(...report.links.map((l) => l.link.length));
  const lines = [`probe trace ${report.traceId} as ${report.identity}`];
  for (const link of report.links) {
    const mark = link.ok === true ? 'ok     ' : link.ok === false ? 'BROKEN ' : 'skipped';
    lines.push(`  ${mark} ${link.link.padEnd(width)}  ${link.detail}`);
  }
  const broke = report.links.filter((l) => l.ok === false).map((l) => l.link);
  lines.push(broke.length === 0 ? 'every link checked holds' : `broken: ${broke.join(', ')}`);
  return lines;
}
