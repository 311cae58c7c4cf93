/**
 * The operator's files: the Grafana dashboard imports (the fields Grafana's classic dashboard model
 * needs), the alert rules are well formed, and every query names a metric, and labels, the package
 * really exports, so a renamed metric cannot leave a silent panel or an alert that never fires.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { metricsFor, migrationMetricsFor, OPERATIONS } from '../../src/telemetry';

const ROOT = join(__dirname, '..', '..');

/** name -> label names, for every metric the package registers. */
function exportedMetrics(): Map<string, string[]> {
  const registry = new Registry();
  metricsFor(registry);
  migrationMetricsFor(registry);
  return new Map(registry.getMetricsAsArray().map((m) => [m.name, [...((m as unknown as { labelNames: string[] }).labelNames ?? [])]]));
}

const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

/** The problems with one PromQL expression: unknown metrics, unknown labels; [] when fine. */
function problemsIn(expr: string, exported: Map<string, string[]>): string[] {
  const problems: string[] = [];
  const named = [...expr.matchAll(/\b(dualwrite_[a-z_]+)\b(\{[^}]*\})?/g)];
  if (named.length === 0) problems.push(`names no dualwrite_ metric: ${expr}`);
  // Prometheus adds the scrape target's labels to every series: a panel may group by them.
  const allowed = new Set<string>(['instance', 'job']);
  for (const [, series, selector] of named) {
    const metric = exported.has(series) ? series : series.replace(HISTOGRAM_SERIES, '');
    const labels = exported.get(metric);
    if (!labels) {
      problems.push(`unknown metric ${series}`);
      continue;
    }
    const own = new Set([...labels, ...(series.endsWith('_bucket') ? ['le'] : [])]);
    own.forEach((label) => allowed.add(label));
    for (const [, label] of (selector ?? '').matchAll(/([a-z_]+)\s*(=~|!~|!=|=)/g)) {
      if (!own.has(label)) problems.push(`${series} has no label ${label}`);
    }
  }
  for (const [, list] of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    for (const label of list.split(',').map((l) => l.trim()).filter(Boolean)) {
      if (!allowed.has(label)) problems.push(`groups by ${label}, which none of its metrics has`);
    }
  }
  return problems;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource: { type: string; uid: string };
  targets: { refId: string; expr: string; datasource: { type: string } }[];
}

describe('deploy/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana-dashboard.json'), 'utf8'));
  const panels = dashboard.panels as Panel[];
  const exported = exportedMetrics();

  it('has the fields a Grafana dashboard import needs', () => {
    expect(dashboard).toMatchObject({
      title: expect.any(String),
      uid: expect.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
      schemaVersion: expect.any(Number),
      editable: expect.any(Boolean),
      time: { from: expect.any(String), to: expect.any(String) },
      templating: { list: [expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' })] },
      annotations: { list: expect.any(Array) },
    });
    expect(panels.length).toBeGreaterThan(0);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const panel of panels) {
      expect(panel).toMatchObject({
        id: expect.any(Number),
        type: expect.stringMatching(/^(timeseries|stat|gauge|table|bargauge)$/),
        title: expect.any(String),
        datasource: { type: 'prometheus', uid: '${datasource}' },
        gridPos: { h: expect.any(Number), w: expect.any(Number), x: expect.any(Number), y: expect.any(Number) },
      });
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      expect(panel.targets.length).toBeGreaterThan(0);
      expect(new Set(panel.targets.map((t) => t.refId)).size).toBe(panel.targets.length);
      for (const target of panel.targets) expect(target.datasource.type).toBe('prometheus');
    }
  });

  it('queries only metrics and labels the package exports', () => {
    const problems = panels.flatMap((panel) => panel.targets.flatMap((t) => problemsIn(t.expr, exported).map((p) => `${panel.title}: ${p}`)));

    expect(problems).toEqual([]);
  });

  it('shows every metric the package exports', () => {
    const queried = panels.flatMap((panel) => panel.targets.map((t) => t.expr)).join('\n');

    expect([...exported.keys()].filter((name) => !queried.includes(name))).toEqual([]);
  });
});

describe('deploy/prometheus-rules.yml', () => {
  const text = readFileSync(join(ROOT, 'deploy', 'prometheus-rules.yml'), 'utf8');
  const exported = exportedMetrics();
  // Each rule is a "- alert:" item with one-line fields; the file is written that way on purpose
  // so this check needs no YAML parser.
  const rules = text
    .split(/^\s*- alert: /m)
    .slice(1)
    .map((block) => ({
      alert: block.split('\n')[0].trim(),
      expr: /^\s*expr: (.+)$/m.exec(block)?.[1],
      for: /^\s*for: (\S+)$/m.exec(block)?.[1],
      severity: /^\s*severity: (\S+)$/m.exec(block)?.[1],
      summary: /^\s*summary: (.+)$/m.exec(block)?.[1],
    }));

  it('is a rule group whose every alert has an expression, a duration, a severity and a summary', () => {
    expect(text).toMatch(/^groups:\n {2}- name: redis-dual-write\n {4}rules:\n/m);
    expect(text).not.toMatch(/\t/);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['DualWriteDivergenceSeen', 'DualWriteReadFallbacksInRampdown', 'DualWriteScriptReloadStorm']),
    );
    for (const rule of rules) {
      expect(rule).toEqual({
        alert: expect.stringMatching(/^[A-Z][A-Za-z]+$/),
        expr: expect.any(String),
        for: expect.stringMatching(/^\d+[smh]$/),
        severity: expect.stringMatching(/^(warning|critical)$/),
        summary: expect.any(String),
      });
    }
  });

  it('names only metrics and labels the package exports in every expression', () => {
    const problems = rules.flatMap((rule) => problemsIn(rule.expr ?? '', exported).map((p) => `${rule.alert}: ${p}`));

    expect(problems).toEqual([]);
  });

  it('the check itself catches a metric or label that does not exist', () => {
    expect(problemsIn('sum by (kind) (rate(dualwrite_divergence_total[5m]))', exported)).toEqual([
      'unknown metric dualwrite_divergence_total',
      'groups by kind, which none of its metrics has',
    ]);
    expect(problemsIn('rate(dualwrite_repairs_total{layout="new"}[5m])', exported)).toEqual(['dualwrite_repairs_total has no label layout']);
  });
});

describe('README.md "Metrics"', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const row = (metric: string) => readme.split('\n').find((line) => line.startsWith(`| \`${metric}\` |`)) ?? '';

  it('names every metric the package exports, each in its own row', () => {
    expect([...exportedMetrics().keys()].filter((name) => row(name) === '')).toEqual([]);
  });

  it('lists every value of the operation label, and no other', () => {
    const listed = /`operation` \(([^)]*)\)/.exec(row('dualwrite_operations_total'))?.[1] ?? '';
    expect(listed.split(', ').map((value) => value.replace(/`/g, ''))).toEqual([...OPERATIONS]);
  });
});
