import type { Registry } from 'prom-client'

/**
 * Counter and histogram families for what is recorded on every request. A caller resolves a label
 * set to its series once and keeps it; recording is then `n++` or a bucket increment. prom-client's
 * own `labels(...).inc()` / `.observe()` validate and hash the labels on every call, which cost the
 * gateway about a tenth of its small-request throughput (BENCHMARKS.md). prom-client still owns the
 * registry and the exposition format: these families register with it and are formatted at scrape
 * time, exactly as its own Counter and Histogram would be.
 */
type Labels = Readonly<Record<string, string>>

interface ExposedValue {
  labels: Record<string, string | number>
  value: number
  metricName?: string
}

interface Exposed {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  values: ExposedValue[]
}

export class CounterSeries {
  value = 0
  constructor (readonly labels: Labels) {}

  inc (): void {
    this.value++
  }

  zero (): void {
    this.value = 0
  }
}

export class HistogramSeries {
  count = 0
  sum = 0
  /** Observations per bucket (not cumulative); the last one is above every bound (+Inf). */
  readonly counts: number[]

  constructor (readonly labels: Labels, private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe (value: number): void {
    let i = 0
    while (i < this.bounds.length && value > this.bounds[i]!) i++
    this.counts[i]!++
    this.count++
    this.sum += value
  }

  zero (): void {
    this.counts.fill(0)
    this.count = 0
    this.sum = 0
  }
}

abstract class Family<S extends { labels: Labels, zero: () => void }> {
  readonly aggregator = 'sum'
  protected readonly all = new Map<string, S>()

  constructor (
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
    registry: Registry
  ) {
    registry.registerMetric(this as never)
  }

  /** The series for one label set: look it up once per label set and keep it. */
  series (labels: Labels): S {
    const names = Object.keys(labels)
    if (names.length !== this.labelNames.length || !this.labelNames.every((n) => typeof labels[n] === 'string')) {
      throw new TypeError(`${this.name} takes the labels ${this.labelNames.join(', ')}; got ${names.join(', ')}`)
    }
    const key = JSON.stringify(this.labelNames.map((n) => labels[n]))
    let series = this.all.get(key)
    if (series === undefined) {
      series = this.create({ ...labels })
      this.all.set(key, series)
    }
    return series
  }

  /** What prom-client's registry formats (the shape its own metrics return). */
  async get (): Promise<Exposed> {
    const values: ExposedValue[] = []
    for (const series of this.all.values()) this.expose(series, values)
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** Zeroes every series in place: callers keep the handles they hold. */
  reset (): void {
    for (const series of this.all.values()) series.zero()
  }

  protected abstract create (labels: Labels): S
  protected abstract expose (series: S, into: ExposedValue[]): void
}

export class CounterFamily extends Family<CounterSeries> {
  constructor (options: { name: string, help: string, labelNames: readonly string[], registry: Registry }) {
    super(options.name, options.help, 'counter', options.labelNames, options.registry)
  }

  protected create (labels: Labels): CounterSeries {
    return new CounterSeries(labels)
  }

  protected expose (series: CounterSeries, into: ExposedValue[]): void {
    into.push({ labels: { ...series.labels }, value: series.value })
  }
}

export class HistogramFamily extends Family<HistogramSeries> {
  private readonly bounds: readonly number[]

  constructor (options: { name: string, help: string, labelNames: readonly string[], buckets: readonly number[], registry: Registry }) {
    super(options.name, options.help, 'histogram', options.labelNames, options.registry)
    this.bounds = [...options.buckets].sort((a, b) => a - b)
  }

  protected create (labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds)
  }

  protected expose (series: HistogramSeries, into: ExposedValue[]): void {
    let cumulative = 0
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += series.counts[i]!
      into.push({ labels: { le: i < this.bounds.length ? this.bounds[i]! : '+Inf', ...series.labels }, value: cumulative, metricName: `${this.name}_bucket` })
    }
    into.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` })
    into.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` })
  }
}
