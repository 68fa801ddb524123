/**
 * Counters and histograms fed by the facts the audit recorder publishes on its channels
 * (`meshgate:<engine>:<type>`, audit/recorder.ts) and by the JWKS and Google token fetchers.
 * Subscribed only while metrics are configured; an event costs a few Map lookups and
 * additions, with the cells of fixed labels fetched once.
 */
import diagnostics from 'node:diagnostics_channel';
import type { AlertEvent, ConnectionEvent, CredentialEvent, DryRunRecord, PolicyEvent, RpcEvent, SessionEndEvent, StatementEvent } from '../../audit/index.ts';
import { TOKEN_FETCH_CHANNEL } from '../../credentials/index.ts';
import { JWKS_FETCH_CHANNEL } from '../../identity/index.ts';
import { CounterFamily, HistogramFamily, type CounterCell } from './cells.ts';
import { codeLabel, loginOutcome, methodLabel, operationOutcome, policyJudged, ruleLabel, sessionOutcome, verbLabel } from './labels.ts';

/** Seconds: a statement through meshgate is sub-millisecond on a LAN, a report may take minutes. */
export const STATEMENT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds: a Firestore call goes to Google and back. */
export const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class EventMetrics {
  readonly logins = new CounterFamily('meshgate_logins_total', 'Logins (MySQL connections, Firestore connections refused before a call) by engine and outcome: success, denied by policy, failed.', ['engine', 'outcome']);
  readonly loginFailures = new CounterFamily('meshgate_login_failures_total', 'Logins that did not succeed, by engine and stable MG_ error code.', ['engine', 'code']);
  readonly sessions = new CounterFamily('meshgate_sessions_total', 'Sessions ended, by engine and how: client_closed, shutdown or error.', ['engine', 'outcome']);
  readonly decisions = new CounterFamily('meshgate_policy_decisions_total', 'Policy decisions on logins, statements and calls, by engine, decision and the rule that decided (none: denied by default).', ['engine', 'decision', 'rule']);
  readonly statements = new HistogramFamily('meshgate_statement_duration_seconds', 'Time from a statement reaching meshgate to its answer, by engine, verb (or command) and outcome: completed, failed, denied, unknown.', ['engine', 'verb', 'outcome'], STATEMENT_BUCKETS);
  readonly rpcs = new HistogramFamily('meshgate_rpc_duration_seconds', 'Time of a gRPC call through meshgate, by engine, method and outcome: completed, failed, denied, unknown.', ['engine', 'method', 'outcome'], RPC_BUCKETS);
  readonly bytes = new CounterFamily('meshgate_session_bytes_total', 'Bytes relayed by sessions that ended, by engine and direction: from_client, from_upstream.', ['engine', 'direction']);
  readonly credentials = new CounterFamily('meshgate_credential_requests_total', 'Credential requests through the admin API and meshgate\'s own (issue, revoke, rotate), by action and outcome: completed, refused, failed.', ['action', 'outcome']);
  readonly dryRuns = new CounterFamily('meshgate_policy_dry_run_total', 'Logins, statements and calls a dry-run rule (action AUDIT) matched, by engine, what it would have decided and the rule: watch a new DENY here before switching it on.', ['engine', 'decision', 'rule']);
  readonly reloads = new CounterFamily('meshgate_policy_reloads_total', 'Policy versions meshgate tried to put in force, by trigger (start, watch, signal, admin, git) and outcome: completed, or refused (the last good version kept).', ['trigger', 'outcome']);
  readonly alerts = new CounterFamily('meshgate_alerts_total', 'Alerts raised (e.g. lease_compromised), by alert.', ['alert']);
  readonly jwksFetches = new CounterFamily('meshgate_jwks_fetches_total', 'Fetches of token issuers\' JWKS, by outcome: success, failure.', ['outcome']);
  readonly tokenFetches = new CounterFamily('meshgate_token_fetches_total', 'Google access tokens minted for the Firestore upstream, by outcome: success, failure.', ['outcome']);
  /** Open sessions per engine, for the gauges read at scrape time. */
  readonly active = new Map<string, number>();
  /** Their ids: a session that ends before its login was recorded (the client left before its OK) was never counted open. */
  private readonly open = new Set<string>();

  readonly families = [this.logins, this.loginFailures, this.sessions, this.decisions, this.statements, this.rpcs, this.bytes, this.credentials, this.dryRuns, this.reloads, this.alerts, this.jwksFetches, this.tokenFetches];

  /** Told of every allowed MySQL login: upstream answered (readiness). */
  onUpstreamReached: () => void = () => undefined;

  private readonly fetched = { jwks: new Map<string, CounterCell>(), token: new Map<string, CounterCell>() };

  connection(event: ConnectionEvent): void {
    const engine = event.engine;
    const outcome = loginOutcome(event);
    const count = event.repeats?.count ?? 1;
    this.logins.cell(engine, outcome).value += count;
    if (outcome !== 'success') this.loginFailures.cell(engine, codeLabel(event.error?.code)).value += count;
    if (policyJudged(event)) this.decisions.cell(engine, event.decision, ruleLabel(event.rule)).value += count;
    if (event.dryRun !== undefined) this.dryRun(engine, event.dryRun, count);
    if (outcome === 'success') {
      this.open.add(event.sessionId);
      this.active.set(engine, (this.active.get(engine) ?? 0) + 1);
      this.onUpstreamReached();
    }
  }

  statement(event: StatementEvent): void {
    const outcome = operationOutcome(event);
    this.statements.observe(this.statements.cell(event.engine, verbLabel(event.verb, event.command), outcome), event.durationUs / 1e6, event.traceId);
    this.decisions.cell(event.engine, event.decision, ruleLabel(event.rule)).value++;
    if (event.dryRun !== undefined) this.dryRun(event.engine, event.dryRun, 1);
  }

  rpc(event: RpcEvent): void {
    this.rpcs.observe(this.rpcs.cell(event.engine, methodLabel(event.method), operationOutcome(event)), event.durationUs / 1e6, event.traceId);
    this.decisions.cell(event.engine, event.decision, ruleLabel(event.rule)).value++;
    if (event.dryRun !== undefined) this.dryRun(event.engine, event.dryRun, 1);
  }

  policy(event: PolicyEvent): void {
    this.reloads.cell(event.trigger, event.outcome).value++;
  }

  private dryRun(engine: string, dry: DryRunRecord, count: number): void {
    this.dryRuns.cell(engine, dry.decision, ruleLabel(dry.rule)).value += count;
  }

  sessionEnd(event: SessionEndEvent): void {
    const engine = event.engine;
    this.sessions.cell(engine, sessionOutcome(event)).value++;
    this.bytes.cell(engine, 'from_client').value += event.bytesFromClient;
    this.bytes.cell(engine, 'from_upstream').value += event.bytesFromUpstream;
    if (this.open.delete(event.sessionId)) this.active.set(engine, (this.active.get(engine) ?? 1) - 1);
  }

  credential(event: CredentialEvent): void {
    this.credentials.cell(event.action, event.outcome).value++;
  }

  alert(event: AlertEvent): void {
    this.alerts.cell(event.alert).value++;
  }

  jwksFetch(message: { readonly outcome: string }): void {
    this.fetchCell(this.jwksFetches, this.fetched.jwks, message.outcome).value++;
  }

  tokenFetch(message: { readonly outcome: string }): void {
    this.fetchCell(this.tokenFetches, this.fetched.token, message.outcome).value++;
  }

  private fetchCell(family: CounterFamily, cache: Map<string, CounterCell>, outcome: string): CounterCell {
    let cell = cache.get(outcome);
    if (cell === undefined) cache.set(outcome, (cell = family.cell(outcome === 'success' ? 'success' : 'failure')));
    return cell;
  }
}

type Handler = (message: unknown) => void;

/** Subscribes `metrics` to every channel it counts; the returned function unsubscribes. */
export function subscribe(metrics: EventMetrics, onError: (error: unknown) => void): () => void {
  const handlers: [string, Handler][] = [];
  for (const engine of ['mysql', 'firestore'] as const) {
    handlers.push(
      [`meshgate:${engine}:connection`, (m) => metrics.connection(m as ConnectionEvent)],
      [`meshgate:${engine}:statement`, (m) => metrics.statement(m as StatementEvent)],
      [`meshgate:${engine}:rpc`, (m) => metrics.rpc(m as RpcEvent)],
      [`meshgate:${engine}:session_end`, (m) => metrics.sessionEnd(m as SessionEndEvent)],
      [`meshgate:${engine}:credential`, (m) => metrics.credential(m as CredentialEvent)],
      [`meshgate:${engine}:alert`, (m) => metrics.alert(m as AlertEvent)],
    );
  }
  handlers.push(['meshgate:policy', (m) => metrics.policy(m as PolicyEvent)]);
  handlers.push([JWKS_FETCH_CHANNEL, (m) => metrics.jwksFetch(m as { outcome: string })], [TOKEN_FETCH_CHANNEL, (m) => metrics.tokenFetch(m as { outcome: string })]);
  // A subscriber that throws would take the process down (diagnostics_channel rethrows on the next tick).
  const guarded = handlers.map(([name, handle]) => {
    const safe: Handler = (message) => {
      try {
        handle(message);
      } catch (error) {
        onError(error);
      }
    };
    diagnostics.subscribe(name, safe);
    return [name, safe] as const;
  });
  return () => {
    for (const [name, handle] of guarded) diagnostics.unsubscribe(name, handle);
  };
}
