/**
 * The probe's audit link: the events of its trace id, found in meshgate's audit log, must
 * name the probe's identity and the decision `allow`. Events are written off the data path,
 * so they are looked for until the deadline; only the end of the log is read (the probe's
 * events are the newest).
 */
import { linesBackward } from '../audit/index.ts';
import { broken, holds, type LinkName, type LinkResult } from './report.ts';

/** Where the probe reads the audit: the active JSONL file of a log on this machine. */
export interface AuditFileSource {
  readonly file: string;
}

/** Lines read back from the end of the file before giving up on one pass. */
const TAIL_LINES = 5000;
const POLL_MS = 100;

export async function findEvents(source: AuditFileSource, traceId: string, type: string, deadline: number): Promise<Record<string, unknown>[]> {
  for (;;) {
    const found: Record<string, unknown>[] = [];
    let read = 0;
    for await (const line of linesBackward(source.file)) {
      if (++read > TAIL_LINES) break;
      if (!line.terminated || !line.bytes.includes(traceId)) continue;
      try {
        const event = JSON.parse(line.bytes.toString('utf8')) as Record<string, unknown>;
        if (event['traceId'] === traceId && event['type'] === type) found.push(event);
      } catch {
        // Not an event line (a torn tail is set aside by meshgate itself): not ours.
      }
    }
    if (found.length > 0 || Date.now() >= deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The probe's event of `type` (statement, rpc) must exist, name `identity`, and be allowed. */
export async function probeAudit(link: LinkName, source: AuditFileSource, type: string, identity: string, traceId: string, deadline: number): Promise<LinkResult> {
  let events: Record<string, unknown>[];
  try {
    events = await findEvents(source, traceId, type, deadline);
  } catch (error) {
    return broken(link, `cannot read the audit file ${source.file}: ${(error as Error).message}`);
  }
  if (events.length === 0) return broken(link, `no ${type} event with trace id ${traceId} in ${source.file} by the deadline: the statement ran but was not recorded there (another replica's log, or audit not writing?)`);
  const event = events[0]!;
  const who = (event['identity'] as { spiffeId?: unknown } | null)?.spiffeId;
  if (who !== identity) return broken(link, `the ${type} event of trace ${traceId} names ${String(who)}, not ${identity}`);
  if (event['decision'] !== 'allow') return broken(link, `the ${type} event of trace ${traceId} says ${String(event['decision'])}`);
  return holds(link, `a ${type} event in ${source.file} names ${identity}, decision allow, rule ${String(event['rule'])}`);
}
