import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { TelemetryConfig } from '../src/config/types'
import { startTracing } from '../src/observability/tracing'
import type { RequestTrace } from '../src/observability/tracing-types'

declare module 'fastify' {
  interface FastifyInstance {
    /** Spans for proxied requests; null when tracing is off, the one check a step then makes. */
    tracing: RouteTracing | null
  }
}

export interface RouteTracing {
  /** The route's authentication step, inside a validation span. */
  validation: (authenticate: (request: FastifyRequest) => Promise<void>) => (request: FastifyRequest) => Promise<void>
  /** The spans of a proxied request, for the acquisition and forwarding steps. */
  of: (request: FastifyRequest) => RequestTrace | undefined
}

const kTrace = Symbol('obo-gateway.trace')
const kErrorType = Symbol('obo-gateway.trace-error')
type Traced = FastifyRequest & { [kTrace]?: RequestTrace, [kErrorType]?: string }

const EXPORT_ERROR_LOG_INTERVAL_MS = 10_000

/**
 * Traces of proxied requests (not of health probes or metrics scrapes), exported over OTLP. Without
 * `config` it only declares tracing off: no hook, and the OpenTelemetry SDK is never loaded.
 */
const tracingPlugin: FastifyPluginAsync<{ config: TelemetryConfig | undefined }> = async (fastify, { config }) => {
  if (config === undefined) {
    fastify.decorate('tracing', null)
    return
  }
  let lastExportLog = 0
  const tracing = await startTracing(config, {
    onExportError: (message) => {
      const now = Date.now()
      if (now - lastExportLog < EXPORT_ERROR_LOG_INTERVAL_MS) return
      lastExportLog = now
      fastify.log.warn({ err: { message }, tracesUrl: config.tracesUrl }, 'tracing: spans could not be exported')
    }
  })
  fastify.addHook('onClose', async () => { await tracing.shutdown() })

  fastify.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config.oboRoute !== undefined) {
      ;(request as Traced)[kTrace] = tracing.startRequest({
        method: request.method,
        route: request.routeOptions.url ?? request.routeOptions.config.oboRoute,
        path: request.url.split('?', 1)[0] ?? '',
        scheme: request.protocol,
        headers: request.headers
      })
    }
    done()
  })
  fastify.addHook('onError', (request, _reply, err, done) => {
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string') (request as Traced)[kErrorType] = code
    done()
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    (request as Traced)[kTrace]?.end(reply.statusCode, (request as Traced)[kErrorType])
    done()
  })
  fastify.addHook('onRequestAbort', (request, done) => {
    // nginx's 499: the client went away before its answer was complete.
    (request as Traced)[kTrace]?.end(499, 'OBO_CLIENT_CLOSED_REQUEST')
    done()
  })

  fastify.decorate('tracing', {
    validation: (authenticate) => async (request) => {
      const trace = (request as Traced)[kTrace]
      if (trace === undefined) return await authenticate(request)
      await trace.validation(() => authenticate(request))
    },
    of: (request) => (request as Traced)[kTrace]
  } satisfies RouteTracing)
}

export default fp(tracingPlugin, { name: 'obo-gateway-tracing', fastify: '5.x' })
