// A small Prometheus registry: counters, gauges (set, or read by a callback at scrape time) and histograms, with
// labels, rendered in the text exposition format 0.0.4. Written here because prom-client is not a dependency; it
// covers what the operator metrics need and nothing more. Every metric bounds its number of series.
export type Labels = Record<string, string>;

/** A value read at scrape time: one number, or one per label set. */
export type Collect = () => number | { labels: Labels; value: number }[] | Promise<number | { labels: Labels; value: number }[]>;

/** Series one metric keeps at most; past it new label sets are dropped (and counted), so memory stays bounded. */
export const MAX_SERIES_PER_METRIC = 500;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}` : '';
}
/** One key per label set, independent of the order the labels were given in. */
const keyOf = (labelNames: readonly string[], labels: Labels) => labelNames.map((n) => labels[n] ?? '').join('\u0000');

abstract class Metric {
  /** New label sets refused because the metric had MAX_SERIES_PER_METRIC already. */
  dropped = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    for (const l of labelNames) if (!LABEL.test(l) || l === 'le') throw new Error(`bad label name ${l}`);
  }
  /** The label set in declared order, only declared names; undefined past the series bound. */
  protected labelsOf(labels: Labels, size: number, has: boolean): Labels | undefined {
    if (!has && size >= MAX_SERIES_PER_METRIC) {
      this.dropped += 1;
      return undefined;
    }
    return Object.fromEntries(this.labelNames.map((n) => [n, labels[n] ?? '']));
  }
  abstract samples(): Promise<string[]>;
  async render(): Promise<string[]> {
    const samples = await this.samples();
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...samples];
  }
}

class ValueMetric extends Metric {
  protected readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    name: string,
    help: string,
    type: 'counter' | 'gauge',
    labelNames: readonly string[],
    private readonly collect?: Collect,
  ) {
    super(name, help, type, labelNames);
  }
  protected add(labels: Labels, by: number, set = false): void {
    const key = keyOf(this.labelNames, labels);
    const had = this.values.get(key);
    if (had) {
      had.value = set ? by : had.value + by;
      return;
    }
    const ls = this.labelsOf(labels, this.values.size, false);
    if (ls) this.values.set(key, { labels: ls, value: by });
  }
  async samples(): Promise<string[]> {
    let entries = [...this.values.values()];
    if (this.collect) {
      const got = await this.collect();
      entries = typeof got === 'number' ? [{ labels: {}, value: got }] : got.slice(0, MAX_SERIES_PER_METRIC);
    }
    return entries.map((e) => `${this.name}${formatLabels(e.labels)} ${formatValue(e.value)}`);
  }
}

export class Counter extends ValueMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = [], collect?: Collect) {
    super(name, help, 'counter', labelNames, collect);
  }
  inc(labels: Labels = {}, by = 1): void {
    if (by >= 0) this.add(labels, by);
  }
}

export class Gauge extends ValueMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = [], collect?: Collect) {
    super(name, help, 'gauge', labelNames, collect);
  }
  set(labels: Labels, value: number): void {
    this.add(labels, value, true);
  }
}

export class Histogram extends Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram', labelNames);
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) throw new Error('buckets must increase');
  }
  /** One observation: a bucket found by a short scan, a sum, a count. Cheap enough for any path. */
  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const key = keyOf(this.labelNames, labels);
    let s = this.series.get(key);
    if (!s) {
      const ls = this.labelsOf(labels, this.series.size, false);
      if (!ls) return;
      s = { labels: ls, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }
  async samples(): Promise<string[]> {
    const out: string[] = [];
    for (const s of this.series.values()) {
      // Buckets are cumulative: counts[i] already holds every observation <= buckets[i].
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: formatValue(b) })} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(`${this.name}_sum${formatLabels(s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${formatLabels(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  register<M extends Metric>(metric: M): M {
    if (this.metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.push(metric);
    return metric;
  }

  /**
   * The text exposition of every metric. A callback that fails leaves its metric out of this scrape (`onError`
   * hears why) rather than failing the whole scrape.
   */
  async expose(onError?: (name: string, err: unknown) => void): Promise<string> {
    const parts = await Promise.all(
      this.metrics.map((m) =>
        m.render().catch((err: unknown) => {
          onError?.(m.name, err);
          return [] as string[];
        }),
      ),
    );
    return `${parts.flat().join('\n')}\n`;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
