import type { FastifyInstance } from 'fastify'
import { configFromText } from '../config/load'
import type { GatewayConfig } from '../config/types'
import { gatewayReadiness } from './readiness'
import { closeOnSignal } from './shutdown'
import { isMessage, type FromWorker, type ToWorker, type WorkerMetrics } from './worker-messages'

export interface WorkerOptions {
  /** Builds the gateway and listens on server.port (the primary serves the admin port). */
  start: (config: GatewayConfig) => Promise<FastifyInstance>
  /** The one line an operator reads when the start fails. */
  explain: (err: unknown) => string
  /** How long in-flight requests get to finish once shutting down. */
  graceMs: number
}

/**
 * One worker process of the cluster: the gateway as a single process runs it, from the config text
 * the primary read, answering the primary's readiness and metrics questions, and closing (in-flight
 * requests first) when the primary asks or on a signal of its own.
 */
export async function runWorker (options: WorkerOptions): Promise<void> {
  const { text, source } = await configFromPrimary()
  let app: FastifyInstance
  try {
    app = await options.start(configFromText(text, source))
  } catch (err) {
    // The primary prints the reason once, however many workers failed alike.
    send({ type: 'obo-gateway:failed', message: options.explain(err) }, () => process.exit(1))
    return
  }
  let closing = false
  const grace = closeOnSignal(app, options.graceMs, () => { closing = true })
  process.on('message', (message: unknown) => {
    if (isMessage<ToWorker>(message, 'obo-gateway:shutdown')) {
      if (!closing) grace.close()
    } else if (isMessage<Extract<ToWorker, { type: 'obo-gateway:readiness?' }>>(message, 'obo-gateway:readiness?')) {
      gatewayReadiness(app).then(
        (readiness) => { send({ type: 'obo-gateway:readiness', id: message.id, readiness }) },
        (err: Error) => { send({ type: 'obo-gateway:readiness', id: message.id, readiness: { status: 'not_ready', checks: { worker: { status: 'failed', detail: err.message } } } }) })
    } else if (isMessage<Extract<ToWorker, { type: 'obo-gateway:metrics?' }>>(message, 'obo-gateway:metrics?')) {
      // A worker whose registry fails is left out of that scrape (the primary logs which).
      plainMetrics(app).then((metrics) => { send({ type: 'obo-gateway:metrics', id: message.id, metrics }) }, () => {})
    }
  })
  send({ type: 'obo-gateway:listening' })
}

function configFromPrimary (): Promise<{ text: string, source: string }> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (!isMessage<Extract<ToWorker, { type: 'obo-gateway:config' }>>(message, 'obo-gateway:config')) return
      process.off('message', onMessage)
      resolve(message)
    }
    process.on('message', onMessage)
    send({ type: 'obo-gateway:config?' })
  })
}

/** The registry's metrics as data that crosses the IPC channel (no collect functions). */
async function plainMetrics (app: FastifyInstance): Promise<WorkerMetrics> {
  const metrics = await app.metrics.registry.getMetricsAsJSON()
  return metrics.map(({ name, help, type, aggregator, values }) => ({ name, help, type, aggregator, values }) as WorkerMetrics[number])
}

function send (message: FromWorker, then: () => void = () => {}): void {
  // Errors are ignored: the channel closes only with the primary, and Node's cluster module ends a
  // worker whose primary is gone.
  if (process.send === undefined) then()
  else process.send(message, undefined, undefined, () => { then() })
}
