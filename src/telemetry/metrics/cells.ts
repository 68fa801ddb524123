/**
 * Counters and histograms that cost an event next to nothing: each label combination is a
 * cell found through nested Maps (no key string, no labels object per event), and adding to
 * it is a number or two. prom-client reads them at scrape time: the families implement its
 * metric interface (`get()`), so its registry formats them beside its own gauges. (prom-client's
 * own `labels(...).inc()` builds and hashes a labels object on every call.)
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

export interface CounterCell {
  readonly labels: Labels;
  value: number;
}

export interface HistogramCell {
  readonly labels: Labels;
  /** Observations per bucket, not cumulative; the last is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
  /**
   * Each bucket's latest exemplar (OpenMetrics): the trace id of an observation that fell in
   * it, its value and when (seconds). Kept in arrays so an observation allocates nothing.
   */
  readonly exemplarTraces: (string | undefined)[];
  readonly exemplarValues: Float64Array;
  readonly exemplarTimes: Float64Array;
}

/** Cells by their label values, one Map level per label. */
class Cells<Cell> {
  private readonly root = new Map<string, unknown>();
  readonly all: Cell[] = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly make: (labels: Labels) => Cell,
  ) {}

  get(a: string, b?: string, c?: string): Cell {
    let level = this.root;
    const depth = this.labelNames.length;
    for (let i = 0; i < depth - 1; i++) {
      const value = i === 0 ? a : i === 1 ? b! : c!;
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(value, (next = new Map()));
      level = next;
    }
    const last = depth === 1 ? a : depth === 2 ? b! : c!;
    let cell = level.get(last) as Cell | undefined;
    if (cell === undefined) {
      const values = [a, b, c];
      const labels = Object.freeze(Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]!])));
      level.set(last, (cell = this.make(labels)));
      this.all.push(cell);
    }
    return cell;
  }
}

/** One sample as prom-client's registry formats it (the exemplar only in OpenMetrics). */
interface Sample {
  readonly metricName?: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly exemplar?: { readonly labelSet: Readonly<Record<string, string>>; readonly value: number; readonly timestamp: number };
}

/** What prom-client's registry reads of a metric (its `get()`, as its own classes have). */
export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>;
  reset(): void;
}

/** Registers one of these families with prom-client, whose types list only its own classes. */
export function register(registry: Registry, family: Family): void {
  registry.registerMetric(family as unknown as Metric);
}

/** A `_total` counter with one to three labels. */
export class CounterFamily implements Family {
  readonly type = 'counter';
  private readonly cells: Cells<CounterCell>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (labelNames.length < 1 || labelNames.length > 3) throw new TypeError('one to three labels');
    this.cells = new Cells(labelNames, (labels) => ({ labels, value: 0 }));
  }

  /** The cell for these label values (fetch once and keep it where the values are fixed). */
  cell(a: string, b?: string, c?: string): CounterCell {
    return this.cells.get(a, b, c);
  }

  reset(): void {
    for (const cell of this.cells.all) cell.value = 0;
  }

  async get(): ReturnType<Family['get']> {
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values: this.cells.all.map((cell) => ({ labels: cell.labels, value: cell.value })) };
  }
}

export class HistogramFamily implements Family {
  readonly type = 'histogram';
  private readonly cells: Cells<HistogramCell>;
  private readonly bounds: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    this.bounds = Float64Array.from(buckets);
    if (this.bounds.some((bound, i) => i > 0 && bound <= this.bounds[i - 1]!)) throw new TypeError('buckets must increase');
    const slots = buckets.length + 1;
    this.cells = new Cells(labelNames, (labels) => ({
      labels,
      counts: new Float64Array(slots),
      sum: 0,
      count: 0,
      exemplarTraces: new Array<string | undefined>(slots).fill(undefined),
      exemplarValues: new Float64Array(slots),
      exemplarTimes: new Float64Array(slots),
    }));
  }

  cell(a: string, b?: string, c?: string): HistogramCell {
    return this.cells.get(a, b, c);
  }

  /** Counts `value`; with `traceId`, it becomes its bucket's exemplar (a metric leads to a trace). */
  observe(cell: HistogramCell, value: number, traceId?: string): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
    if (traceId !== undefined) {
      cell.exemplarTraces[i] = traceId;
      cell.exemplarValues[i] = value;
      cell.exemplarTimes[i] = Date.now() / 1000;
    }
  }

  reset(): void {
    for (const cell of this.cells.all) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
      cell.exemplarTraces.fill(undefined);
    }
  }

  async get(): ReturnType<Family['get']> {
    const values: Sample[] = [];
    for (const cell of this.cells.all) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...cell.labels, le: this.bounds[i]! }, value: cumulative, ...exemplarOf(cell, i) });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...cell.labels, le: '+Inf' }, value: cell.count, ...exemplarOf(cell, this.bounds.length) });
      values.push({ metricName: `${this.name}_sum`, labels: cell.labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: cell.labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }
}

/** The bucket's exemplar as prom-client formats it: `# {trace_id="…"} value timestamp`. */
function exemplarOf(cell: HistogramCell, bucket: number): Pick<Sample, 'exemplar'> {
  const traceId = cell.exemplarTraces[bucket];
  if (traceId === undefined) return {};
  return { exemplar: { labelSet: { trace_id: traceId }, value: cell.exemplarValues[bucket]!, timestamp: cell.exemplarTimes[bucket]! } };
}
