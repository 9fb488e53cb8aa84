import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import type { GatewayConfig } from '../src/config/types'
import { Forwarder } from '../src/forwarding/forwarder'
import { mergeVary } from '../src/forwarding/headers'
import { proxyRequest, type ProxyRoute } from '../src/pipeline/proxy-request'
import { sendContinue } from '../src/server/expect-continue'
import { assertionOf } from '../plugins/entra-auth'
import { mcpChallenge } from '../src/mcp/challenge'
import { toolCallGuard } from '../src/mcp/tool-guard'

const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** One proxied route per config entry: authenticate, (rate limit), then src/pipeline/proxy-request. */
const proxyRoutes: FastifyPluginAsync<{ config: GatewayConfig }> = async (fastify, { config }) => {
  const limit = config.server.rateLimit
  if (limit !== undefined && !fastify.hasDecorator('rateLimit')) {
    throw new Error('obo-gateway-proxy-routes: server.rateLimit is set, so @fastify/rate-limit must be registered before the proxy routes')
  }
  for (const route of config.routes) {
    await fastify.register(async (scope) => {
      // Bodies stream through untouched: no parsing, no buffering.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

      const forwarder = new Forwarder(route, { observe: scope.metrics.upstreamObserver(route.prefix), trustProxy: config.server.trustProxy })
      scope.addHook('onClose', async () => { await forwarder.close() })
      const guardToolCall = route.mcp === undefined ? undefined : toolCallGuard(route.mcp)
      const target: ProxyRoute = { route, forwarder, tokens: scope.tokenAcquirer, ...(guardToolCall ? { guardToolCall } : {}) }

      // Tracing is optional: without plugins/tracing (or with it off) each step checks one null.
      const tracing = scope.hasDecorator('tracing') ? scope.tracing : null
      const authenticate = async (request: FastifyRequest): Promise<void> => { await scope.entraAuthenticate(request) }
      const preHandler: preHandlerHookHandler[] = [tracing === null ? authenticate : tracing.validation(authenticate)]
      if (limit !== undefined) {
        // Per caller, not per IP: behind one NAT or BFF sit many users.
        preHandler.push(scope.rateLimit({
          max: limit.max,
          timeWindow: limit.windowSeconds * 1000,
          keyGenerator: (request) => `${route.prefix}|${limit.key === 'user' ? request.principal?.objectId ?? '' : request.principal?.clientId ?? ''}`
        }))
      }

      const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        // undici takes an emitter as its abort signal; cheaper per request than an AbortController.
        const signal = new EventEmitter()
        reply.raw.once('close', () => { if (!reply.raw.writableFinished) signal.emit('abort') })
        const upstream = await proxyRequest(target, {
          principal: request.principal!,
          assertion: assertionOf(request),
          method: request.method,
          url: request.raw.url ?? request.url,
          headers: request.headers,
          body: request.body as Readable | undefined,
          continueBody: () => { sendContinue(reply.raw) },
          peerAddress: request.socket.remoteAddress,
          protocol: request.protocol,
          correlationId: request.id,
          signal,
          trace: tracing?.of(request)
        })
        // @fastify/cors has set Vary: Origin already; the upstream's Vary adds to it.
        const vary = mergeVary(reply.getHeader('vary'), upstream.headers.vary)
        reply.code(upstream.status).headers(upstream.headers)
        if (vary !== undefined) reply.header('vary', vary)
        // An empty buffer would be labelled application/octet-stream by fastify; nothing is sent as is.
        return await reply.send(Buffer.isBuffer(upstream.body) && upstream.body.length === 0 ? undefined : upstream.body)
      }
      const routeConfig = { oboRoute: route.prefix, ...(route.mcp ? { mcpChallenge: mcpChallenge(route.prefix, route.mcp) } : {}) }
      scope.route({ method: ALL_METHODS, url: route.prefix, preHandler, handler, config: routeConfig })
      scope.route({ method: ALL_METHODS, url: `${route.prefix}/*`, preHandler, handler, config: routeConfig })
    })
  }
}

export default fp(proxyRoutes, {
  name: 'obo-gateway-proxy-routes',
  fastify: '5.x',
  // Its own routes and hooks stay inside it.
  encapsulate: true,
  dependencies: ['obo-gateway-observability', 'obo-gateway-entra-auth', 'obo-gateway-token-acquisition'],
  decorators: { fastify: ['metrics', 'entraAuthenticate', 'tokenAcquirer'] }
})
