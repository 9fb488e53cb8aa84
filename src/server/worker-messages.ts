import type { Registry } from 'prom-client'
import type { Readiness } from './readiness'

/**
 * What the primary process and its workers say to each other over the cluster's IPC channel. Every
 * type is prefixed: prom-client and Node's cluster module use the same channel.
 */
export type ToWorker =
  | { type: 'obo-gateway:config', text: string, source: string }
  | { type: 'obo-gateway:readiness?', id: number }
  | { type: 'obo-gateway:metrics?', id: number }
  | { type: 'obo-gateway:shutdown' }

export type FromWorker =
  | { type: 'obo-gateway:config?' }
  | { type: 'obo-gateway:listening' }
  | { type: 'obo-gateway:failed', message: string }
  | { type: 'obo-gateway:readiness', id: number, readiness: Readiness }
  | { type: 'obo-gateway:metrics', id: number, metrics: WorkerMetrics }

export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

/** The environment variable that tells a worker its slot (1..workers), stable across restarts. */
export const WORKER_SLOT_ENV = 'OBO_GATEWAY_WORKER'

export function isMessage<T extends { type: string }> (message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type
}
