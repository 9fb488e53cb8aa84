import closeWithGrace from 'close-with-grace'
import type { FastifyServerOptions } from 'fastify'
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client'
import type { GatewayConfig } from '../config/types'
import { buildAdminListener } from './admin-listener'
import { listenOrExplain } from '../net/listen'
import { workersReadiness } from './readiness'
import { WorkerPool } from './worker-pool'
import type { WorkerMetrics } from './worker-messages'

/** A worker busy past this leaves its series out of one scrape rather than failing it. */
const METRICS_TIMEOUT_MS = 5_000
/** Beyond the workers' grace period: the time the primary itself takes to kill stragglers and close. */
const PRIMARY_MARGIN_MS = 5_000

export interface PrimaryOptions {
  config: GatewayConfig
  /** The config file's text and name: every worker parses this text, never the file as it is later. */
  configText: string
  source: string
  logger: FastifyServerOptions['logger']
  /** How long each worker's in-flight requests get once shutting down. */
  graceMs: number
}

/**
 * The primary process of `server.workers` > 1: it serves no gateway traffic itself. It runs the
 * workers (src/server/worker-pool.ts) and the admin port: /healthz while it runs, /readyz from
 * every worker's readiness, /metrics from every worker's registry with a `worker` label.
 */
export async function runPrimary (options: PrimaryOptions): Promise<void> {
  const { host, adminPort, workers } = options.config.server
  const { instance, tenantId, clientId } = options.config.identity
  const admin = await buildAdminListener({ logger: options.logger, challengeContext: { instance, tenantId, clientId } })
  const metrics = new PrimaryMetrics(() => pool.serving)
  const pool = new WorkerPool({
    count: workers,
    configText: options.configText,
    source: options.source,
    log: admin.log,
    onRestart: (slot) => { metrics.restarts.inc({ worker: String(slot) }) }
  })
  // The slowest a worker's readiness can be is a metadata fetch bounded by identity.timeoutMs.
  const readinessTimeoutMs = options.config.identity.timeoutMs + 1_000
  const quiet = { logLevel: 'warn' as const }

  admin.get('/healthz', quiet, async () => ({ status: 'ok' }))
  admin.get('/readyz', quiet, async (_request, reply) => {
    if (pool.draining) {
      return await reply.code(503).send({ status: 'not_ready', checks: { workers: { status: 'failed', detail: 'shutting down' } } })
    }
    const answers = await pool.ask('readiness', readinessTimeoutMs)
    const readiness = workersReadiness(answers.map(({ worker, answer }) => ({ worker, ...(answer === undefined ? {} : { readiness: answer }) })), pool.size)
    return await reply.code(readiness.status === 'not_ready' ? 503 : 200).send(readiness)
  })
  admin.get('/metrics', quiet, async (_request, reply) => {
    const answers = await pool.ask('metrics', METRICS_TIMEOUT_MS)
    const silent = answers.filter((a) => a.answer === undefined).map((a) => a.worker)
    if (silent.length > 0) admin.log.warn({ workers: silent }, `no metrics from worker ${silent.join(', ')} within ${METRICS_TIMEOUT_MS} ms`)
    const perWorker = answers.flatMap(({ worker, answer }) => answer === undefined ? [] : [labelled(answer, String(worker))])
    // Every series carries its worker's label, so nothing is summed: a worker's counters restarting
    // with it read as a reset of that worker's series, which rate() handles, not as a drop of a total.
    const registry = AggregatorRegistry.aggregate([...perWorker, await metrics.registry.getMetricsAsJSON()])
    return await reply.type(registry.contentType).send(await registry.metrics())
  })

  // Config loading refuses workers without an admin port.
  await listenOrExplain(() => admin.listen({ host, port: adminPort! }), `${host}:${adminPort!} (server.adminPort)`)
  try {
    await pool.start()
  } catch (err) {
    await admin.close()
    throw err
  }
  admin.log.info({ workers }, `${workers} workers serving on ${host}:${options.config.server.port}`)
  closeWithGrace({ delay: options.graceMs + PRIMARY_MARGIN_MS, logger: admin.log }, async ({ signal, err }) => {
    if (err) admin.log.error({ err }, 'shutting down after an error')
    else admin.log.info({ signal }, 'shutting down: workers finish their in-flight requests')
    const clean = await pool.stop(options.graceMs)
    await admin.close()
    if (!clean) throw new Error('not every worker shut down cleanly within the grace period')
  })
}

function labelled (metrics: WorkerMetrics, worker: string): WorkerMetrics {
  return metrics.map((metric) => ({ ...metric, values: metric.values.map((v) => ({ ...v, labels: { ...v.labels, worker } })) }))
}

/** The primary's own series, beside the workers'. */
class PrimaryMetrics {
  readonly registry = new Registry()
  readonly restarts: Counter<'worker'>

  constructor (serving: () => number) {
    const registers = [this.registry]
    this.restarts = new Counter({ name: 'obo_gateway_worker_restarts_total', help: 'Workers started again after one died, by worker slot', labelNames: ['worker'], registers })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'obo_gateway_workers_serving', help: 'Worker processes listening on the gateway port', registers, collect () { this.set(serving()) } })
  }
}
