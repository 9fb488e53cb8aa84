import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { refusalMetric } from '../src/http/error-table'
import type { GatewayMetrics } from '../src/observability/metrics'
import type { CounterSeries, HistogramSeries } from '../src/observability/request-metrics'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
    /**
     * Logs and counts a request that Fastify answered without running any hook (its router's
     * refusals, src/server/framework-errors.ts); `error` goes into the log line as an error would.
     */
    recordUnroutedAnswer: (request: FastifyRequest, status: number, error: { code: string, error: string }) => void
  }
  interface FastifyContextConfig {
    /** The configured route prefix a proxied request belongs to: its metrics and log label. */
    oboRoute?: string
  }
}

const kError = Symbol('obo-gateway.error')
type WithError = FastifyRequest & { [kError]?: { code?: string, error: string } }
const kAbandoned = Symbol('obo-gateway.abandoned')
type Abandoned = FastifyRequest & { [kAbandoned]?: boolean }
// nginx's status for a request the client abandoned; it never reaches the client.
const CLIENT_CLOSED_REQUEST = 499

export interface ObservabilityOptions {
  /**
   * Absent on the admin port (src/server/admin-listener.ts), whose requests are logged like the
   * gateway's but not counted: the workers' primary has no gateway metrics to count them in, and
   * a single process's admin port answers as the primary's does.
   */
  metrics?: GatewayMetrics
}

/**
 * One log line per request (route, status, duration, correlation id, tenant, user, client; never a
 * header, a query string or a token) and the request-level metrics. Fastify's own two request log
 * lines are turned off in favour of this one (`disableRequestLogging`).
 */
const observability: FastifyPluginAsync<ObservabilityOptions> = async (fastify, { metrics }) => {
  if (metrics !== undefined) fastify.decorate('metrics', metrics)
  // A gateway has few routes, methods and statuses: each series is looked up once and kept.
  const requestCounters = new Map<string, CounterSeries>()
  const requestTimers = new Map<string, HistogramSeries>()
  const logRequests = ['trace', 'debug', 'info'].includes(fastify.log.level)

  fastify.addHook('onError', async (request, _reply, err) => {
    // Error messages are written for clients too: they never hold a token.
    ;(request as WithError)[kError] = { code: (err as { code?: string }).code, error: err.message }
    if (metrics !== undefined) countRefusal(metrics, err)
  })

  /** `reply` is absent for a request the client abandoned: it is counted, but has no duration. */
  function record (request: FastifyRequest, status: number, reply?: FastifyReply): void {
    const route = routeLabel(request)
    if (metrics !== undefined) count(metrics, request, route, status, reply)
    log(request, route, status, reply?.elapsedTime)
  }

  function count (metrics: GatewayMetrics, request: FastifyRequest, route: string, status: number, reply: FastifyReply | undefined): void {
    const counterKey = `${route} ${request.method} ${status}`
    let counter = requestCounters.get(counterKey)
    if (counter === undefined) {
      counter = metrics.requests.series({ route, method: request.method, status: String(status) })
      requestCounters.set(counterKey, counter)
    }
    counter.inc()
    if (reply === undefined) return
    const timerKey = `${route} ${request.method}`
    let timer = requestTimers.get(timerKey)
    if (timer === undefined) {
      timer = metrics.requestDuration.series({ route, method: request.method })
      requestTimers.set(timerKey, timer)
    }
    timer.observe(reply.elapsedTime / 1000)
  }

  function log (request: FastifyRequest, route: string, status: number, durationMs: number | undefined): void {
    if (!logRequests) return
    const principal = request.principal
    request.log.info({
      route,
      method: request.method,
      path: request.url.split('?')[0],
      status,
      ...(durationMs !== undefined ? { durationMs: Math.round(durationMs * 10) / 10 } : {}),
      ...(principal ? { tenant: principal.tenantId, oid: principal.objectId, clientId: principal.clientId, caller: principal.kind } : {}),
      ...(request as WithError)[kError]
    }, 'request')
  }

  fastify.decorate('recordUnroutedAnswer', (request: FastifyRequest, status: number, error: { code: string, error: string }) => {
    ;(request as WithError)[kError] = error
    record(request, status)
  })

  // Callback style: an async hook would cost a promise on every request.
  fastify.addHook('onResponse', (request, reply, done) => {
    if ((request as Abandoned)[kAbandoned] !== true) record(request, reply.statusCode, reply)
    done()
  })
  // A client that hangs up before its answer is complete gets no onResponse: without this it would
  // be missing from the request count and the log.
  fastify.addHook('onRequestAbort', (request, done) => {
    ;(request as Abandoned)[kAbandoned] = true
    record(request, CLIENT_CLOSED_REQUEST)
    done()
  })
}

/** Route patterns, not raw URLs: label values must stay few. */
function routeLabel (request: FastifyRequest): string {
  return request.routeOptions.config.oboRoute ?? request.routeOptions.url ?? 'unmatched'
}

/** The error's row in src/http/error-table.ts says which counter, if any. */
function countRefusal (metrics: GatewayMetrics, err: unknown): void {
  const metric = refusalMetric(err)
  if (metric === undefined) return
  if (metric.counter === 'validationFailures') metrics.validationFailures.inc({ reason: metric.reason })
  else metrics.claimsChallenges.inc({ kind: metric.kind })
}

export default fp(observability, { name: 'obo-gateway-observability', fastify: '5.x' })
