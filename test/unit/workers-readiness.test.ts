import t from 'tap'
import { workersReadiness, type Readiness } from '../../src/server/readiness'
import { restartDelayMs, RESTART_BASE_MS, RESTART_MAX_MS } from '../../src/server/restart-backoff'

const ready: Readiness = { status: 'ready', checks: { identity: { status: 'ok' }, tokenCache: { status: 'ok' } } }
const redisDown: Readiness = { status: 'degraded', checks: { identity: { status: 'ok' }, tokenCache: { status: 'degraded', detail: 'Redis unreachable' } } }
const noMetadata: Readiness = { status: 'not_ready', checks: { identity: { status: 'failed', detail: 'metadata not loaded' }, tokenCache: { status: 'ok' } } }

t.test('every worker ready: ready, and says how many serve', async (t) => {
  t.same(workersReadiness([{ worker: 1, readiness: ready }, { worker: 2, readiness: ready }], 2), {
    status: 'ready',
    checks: { identity: { status: 'ok' }, tokenCache: { status: 'ok' }, workers: { status: 'ok', detail: '2 of 2 workers serving' } }
  })
})

t.test('each check is the worst a worker reports, naming that worker', async (t) => {
  const r = workersReadiness([{ worker: 1, readiness: ready }, { worker: 2, readiness: redisDown }, { worker: 3, readiness: noMetadata }], 3)
  t.equal(r.status, 'not_ready')
  t.same(r.checks.identity, { status: 'failed', detail: 'worker 3: metadata not loaded' })
  t.same(r.checks.tokenCache, { status: 'degraded', detail: 'worker 2: Redis unreachable' })
})

t.test('a worker restarting or silent degrades; none serving is not ready', async (t) => {
  t.same(workersReadiness([{ worker: 2, readiness: ready }], 2).checks.workers, { status: 'degraded', detail: '1 of 2 workers serving (the others are restarting)' })
  const silent = workersReadiness([{ worker: 1, readiness: ready }, { worker: 2 }], 2)
  t.equal(silent.status, 'degraded')
  t.same(silent.checks.workers, { status: 'degraded', detail: '1 of 2 workers serving (worker 2 did not answer)' })
  t.same(workersReadiness([], 2), { status: 'not_ready', checks: { workers: { status: 'failed', detail: '0 of 2 workers serving' } } })
})

t.test('restart backoff doubles from the base up to the cap', async (t) => {
  t.same([1, 2, 3, 4].map(restartDelayMs), [RESTART_BASE_MS, RESTART_BASE_MS * 2, RESTART_BASE_MS * 4, RESTART_BASE_MS * 8])
  t.equal(restartDelayMs(50), RESTART_MAX_MS)
})
