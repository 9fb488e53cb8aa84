import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { CounterFamily, HistogramFamily } from '../../src/observability/request-metrics'

const BUCKETS = [0.001, 0.005, 0.01, 0.5]

t.test('the families expose exactly what prom-client\'s own Counter and Histogram would', async (t) => {
  const reference = new Registry()
  const counter = new Counter({ name: 'x_requests_total', help: 'Requests', labelNames: ['route', 'status'], registers: [reference] })
  const histogram = new Histogram({ name: 'x_duration_seconds', help: 'Time', labelNames: ['route'], buckets: BUCKETS, registers: [reference] })

  const ours = new Registry()
  const requests = new CounterFamily({ name: 'x_requests_total', help: 'Requests', labelNames: ['route', 'status'], registry: ours })
  const duration = new HistogramFamily({ name: 'x_duration_seconds', help: 'Time', labelNames: ['route'], buckets: [...BUCKETS].reverse(), registry: ours })

  // On a bound, between bounds, above the last bound, and a second series.
  const observations: Array<[string, number]> = [['/api', 0.001], ['/api', 0.003], ['/api', 0.005], ['/api', 2], ['/other', 0.0001]]
  for (const [route, seconds] of observations) {
    histogram.observe({ route }, seconds)
    duration.series({ route }).observe(seconds)
  }
  for (const status of ['200', '200', '401']) {
    counter.inc({ route: '/api', status })
    requests.series({ route: '/api', status }).inc()
  }

  const expected = await reference.metrics()
  t.equal(await ours.metrics(), expected)
  t.match(expected, /x_duration_seconds_bucket\{le="0.005",route="\/api"\} 3/, 'the reference itself counts a value on a bound into that bucket')
})

t.test('a series is found once and kept; reset zeroes it in place; wrong labels are refused', async (t) => {
  const registry = new Registry()
  const requests = new CounterFamily({ name: 'y_total', help: 'Y', labelNames: ['route'], registry })
  const api = requests.series({ route: '/api' })
  t.equal(requests.series({ route: '/api' }), api, 'the same label set is the same series')
  api.inc()
  registry.resetMetrics()
  api.inc()
  t.match(await registry.metrics(), /^y_total\{route="\/api"\} 1$/m, 'a handle taken before the reset still counts')
  t.throws(() => requests.series({ path: '/api' }), TypeError)
  t.throws(() => requests.series({ route: '/api', extra: 'x' }), TypeError)
})
