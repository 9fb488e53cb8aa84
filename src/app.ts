import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { GatewayConfig } from './config/types'
import { OverloadedError } from './errors'
import { errorResponse } from './http/error-response'
import { correlationId } from './http/correlation-id'
import { GatewayMetrics } from './observability/metrics'
import { connectRedis } from './redis/client'
import { buildAdminListener } from './server/admin-listener'
import { clientErrorHandler } from './server/client-error'
import { deferContinue } from './server/expect-continue'
import { frameworkErrorHandler } from './server/framework-errors'
import { serverTimeoutOptions } from './server/timeouts'
import { closesAfterRefusal } from './server/unread-body'
import { checkIncomingHeaders, MAX_HEADER_BYTES } from './validation/incoming-headers'
import entraAuth from '../plugins/entra-auth'
import errorResponses from '../plugins/error-responses'
import observability from '../plugins/observability'
import tokenAcquisition from '../plugins/token-acquisition'
import tracing from '../plugins/tracing'
import health from '../routes/health'
import proxyRoutes from '../routes/proxy'
import mcpRoutes from '../routes/mcp'

export interface BuildOptions {
  logger?: FastifyServerOptions['logger']
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Serves /healthz, /readyz and /metrics when `server.adminPort` is set; listen on it yourself. */
    adminApp: FastifyInstance | null
  }
}

/** Whatever the logger configuration, these never reach a log line. */
export const LOG_REDACTIONS = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]']

/** The gateway as a Fastify instance, not yet listening. */
export async function buildGateway (config: GatewayConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { identity, server } = config
  const challengeContext = { instance: identity.instance, tenantId: identity.tenantId, clientId: identity.clientId }
  const timeouts = serverTimeoutOptions(server.timeouts)
  const app = Fastify({
    logger: options.logger ?? false,
    ...timeouts,
    http: { ...timeouts.http, maxHeaderSize: MAX_HEADER_BYTES },
    clientErrorHandler: clientErrorHandler(challengeContext),
    frameworkErrors: frameworkErrorHandler(challengeContext),
    genReqId: correlationId,
    // plugins/observability writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.server.trustProxy
  })
  deferContinue(app.server)
  const metrics = new GatewayMetrics(() => app.tokenAcquirer.stats())
  await app.register(observability, { metrics })
  await app.register(tracing, { config: config.telemetry })
  // While shutting down, answers to requests already in flight close their connection; otherwise a
  // keep-alive client would hold the server open until its idle timeout. So does a refusal sent
  // while the client may still be sending its body (src/server/unread-body.ts).
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  // Hooks on every request are callback-style: an async hook costs a promise per request.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (closing || closesAfterRefusal(request.raw, reply.statusCode)) reply.header('connection', 'close')
    done(null, payload)
  })
  await app.register(errorResponses, challengeContext)
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      checkIncomingHeaders(request.raw.rawHeaders)
    } catch (err) {
      done(err as Error)
      return
    }
    done()
  })
  await app.register(underPressure, {
    maxEventLoopDelay: server.overload.maxEventLoopDelayMs,
    maxHeapUsedBytes: server.overload.maxHeapUsedBytes,
    maxRssBytes: server.overload.maxRssBytes,
    retryAfter: server.overload.retryAfterSeconds,
    pressureHandler: (request, reply) => {
      const res = errorResponse(new OverloadedError(server.overload.retryAfterSeconds), challengeContext, request.id)
      reply.code(res.status).headers(res.headers).send(res.body)
    }
  })
  if (server.cors !== undefined) {
    const { origins, credentials, exposedHeaders, maxAgeSeconds } = server.cors
    await app.register(cors, {
      origin: origins,
      credentials,
      // Without these a browser hides the challenge and the correlation id from MSAL.js.
      exposedHeaders: ['WWW-Authenticate', 'client-request-id', ...exposedHeaders],
      maxAge: maxAgeSeconds,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      // Preflights are answered here, before authentication; any OPTIONS request is one.
      strictPreflight: false
    })
  }
  if (server.rateLimit !== undefined) {
    const redis = config.tokenCache.redisUrl === undefined ? undefined : connectRedis(config.tokenCache.redisUrl, config.tokenCache.redisCommandTimeoutMs)
    await app.register(rateLimit, {
      global: false,
      // A Redis outage must not turn into refused requests.
      skipOnError: true,
      nameSpace: 'obo-gateway:rl:',
      ...(redis !== undefined ? { redis } : {})
    })
    if (redis !== undefined) app.addHook('onClose', async () => { redis.disconnect() })
  }
  await app.register(entraAuth, {
    instance: identity.instance,
    tenantId: identity.tenantId,
    allowedTenants: identity.allowedTenants,
    audiences: identity.audiences,
    clockSkewSeconds: identity.clockSkewSeconds,
    keyRefreshCooldownSeconds: identity.keyRefreshCooldownSeconds,
    ...(identity.timeoutMs !== undefined ? { timeoutMs: identity.timeoutMs } : {}),
    ca: identity.extraCaPems,
    onKeyFetch: (tenant, ok) => { metrics.jwksFetches.inc({ tenant, outcome: ok ? 'ok' : 'error' }) }
  })
  await app.register(tokenAcquisition, { identity, tokenCache: config.tokenCache, onIdentityCall: (call) => { metrics.identityCall(call) } })
  await app.register(proxyRoutes, { config })
  await app.register(mcpRoutes, { config })

  if (server.adminPort === undefined) {
    await app.register(health, { gateway: app })
    app.decorate('adminApp', null)
  } else {
    const admin = await buildAdminListener({ logger: options.logger, challengeContext })
    await admin.register(health, { gateway: app })
    app.decorate('adminApp', admin)
    app.addHook('onClose', async () => { await admin.close() })
  }
  return app
}
