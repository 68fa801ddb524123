/**
 * deploy/grafana/meshgate.json: valid JSON in Grafana's dashboard shape, every PromQL
 * expression in it naming only metrics meshgate exposes (compared with the registry's own
 * exposition, process metrics included), and every meshgate_ family on some panel.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { newOperationCounts } from '../../../src/credentials/lease-types.ts';
import { createMetricsRegistry } from '../../../src/telemetry/metrics/index.ts';

const DASHBOARD = new URL('../../../deploy/grafana/meshgate.json', import.meta.url);

/** Metric names and series names (a histogram's _bucket, _sum, _count) the registry exposes. */
async function exposedNames(): Promise<Set<string>> {
  const registry = createMetricsRegistry({
    version: 'test',
    audit: { pending: 0, backPressureSeconds: 0, refusal: null },
    pool: () => ({ idleCount: 0, stats: { opened: 0, reused: 0, returned: 0, discarded: 0 } }),
    leases: () => ({ list: async () => [], operations: newOperationCounts() }),
    // No certificate: the family is declared (# TYPE) all the same.
    certificates: { certificatePem: () => null, bundlePem: () => null },
    policy: () => ({ version: 'v', rules: 1 }),
  });
  const names = new Set<string>();
  for (const line of (await registry.text()).split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type === null) continue;
    names.add(type[1]!);
    if (type[2] === 'histogram' || type[2] === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${type[1]}${suffix}`);
  }
  return names;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless']);

/** The metric names an expression reads: identifiers outside strings, matchers, ranges and groupings that are not functions. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)].map((m) => m[1]!).filter((name) => !KEYWORDS.has(name));
}

function expressions(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) expressions(item, found);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'expr' && typeof item === 'string') found.push(item);
      else expressions(item, found);
    }
  }
  return found;
}

describe('the Grafana dashboard', () => {
  it('reads its own expressions right', () => {
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket{instance=~"$instance"}[$__rate_interval])))'), ['a_bucket']);
    assert.deepEqual(metricNames('(b{x="y"} - time()) / 86400 + c / 2^30'), ['b', 'c']);
  });

  it('is a dashboard whose every expression names only metrics meshgate exposes, and shows every meshgate_ family', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { title: string; uid: string; schemaVersion: number; panels: { type: string; title: string; id: number; targets?: unknown[] }[]; templating: { list: { name: string; definition?: string }[] } };
    assert.equal(dashboard.title, 'meshgate');
    assert.ok(dashboard.schemaVersion >= 36);
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const exposed = await exposedNames();
    const exprs = expressions(dashboard.panels);
    assert.ok(exprs.length >= 20, `${exprs.length} expressions`);
    const used = new Set<string>();
    for (const expr of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `no metric in ${expr}`);
      for (const name of names) {
        assert.ok(exposed.has(name), `${name} (in ${expr}) is not a metric meshgate exposes`);
        used.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
    }
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
    const instance = dashboard.templating.list.find((v) => v.name === 'instance')!;
    assert.ok(exposed.has(/label_values\((\w+), instance\)/.exec(instance.definition ?? '')![1]!));
    const families = [...exposed].filter((name) => name.startsWith('meshgate_') && !/_(bucket|sum|count)$/.test(name));
    assert.deepEqual(families.filter((name) => !used.has(name)), [], 'every meshgate_ family is on a panel');
  });
});
