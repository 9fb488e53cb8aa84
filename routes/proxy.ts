import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import type { GatewayConfig, RouteConfig } from '../src/config/types'
import { callDownstream } from '../src/forwarding/downstream-call'
import { Forwarder } from '../src/forwarding/forwarder'
import { prepareBody, type RequestBody } from '../src/forwarding/request-body'
import { authorize } from '../src/validation/requirements'
import { assertionOf } from '../plugins/entra-auth'

const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']
const NO_BODY: RequestBody = { replayable: true, bytes: undefined }

/** One proxied route per config entry: authenticate, authorize, (rate limit), acquire, forward. */
const proxyRoutes: FastifyPluginAsync<{ config: GatewayConfig }> = async (fastify, { config }) => {
  const limit = config.server.rateLimit
  for (const route of config.routes) {
    await fastify.register(async (scope) => {
      // Bodies stream through untouched: no parsing, no buffering.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

      const forwarder = new Forwarder(route, { observe: scope.metrics.upstreamObserver(route.prefix) })
      scope.addHook('onClose', async () => { await forwarder.close() })

      const preHandler: preHandlerHookHandler[] = [async (request) => {
        authorize(await scope.entraAuthenticate(request), route)
      }]
      if (limit !== undefined) {
        // Per caller, not per IP: behind one NAT or BFF sit many users.
        preHandler.push(scope.rateLimit({
          max: limit.max,
          timeWindow: limit.windowSeconds * 1000,
          keyGenerator: (request) => `${route.prefix}|${limit.key === 'user' ? request.principal?.objectId ?? '' : request.principal?.clientId ?? ''}`
        }))
      }

      const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        const principal = request.principal!
        const path = forwarder.pathFor(request.raw.url ?? request.url)
        const body = request.body === undefined ? NO_BODY : await prepareBody(request.body as Readable, request.headers['content-length'], route.replayBodyLimitBytes)
        const acquirer = scope.tokenAcquirer

        // undici takes an emitter as its abort signal; cheaper per request than an AbortController.
        const abort = new EventEmitter()
        reply.raw.once('close', () => { if (!reply.raw.writableFinished) abort.emit('abort') })
        const upstream = await callDownstream(principal, body, {
          acquire: (claims) => principal.kind === 'user'
            ? acquirer.forUser(principal, assertionOf(request), userScopes(route), claims === undefined ? {} : { claims })
            : acquirer.forApp(principal, appScopes(route)),
          evict: (token) => acquirer.evict(token.cacheKey),
          send: (accessToken, attemptBody) => forwarder.forward({ method: request.method, path, headers: request.headers, body: attemptBody, signal: abort }, {
            downstreamToken: accessToken,
            clientIp: request.ip,
            protocol: request.protocol,
            host: request.headers.host,
            correlationId: request.id
          })
        })
        reply.code(upstream.status).headers(upstream.headers)
        // An empty buffer would be labelled application/octet-stream by fastify; nothing is sent as is.
        return await reply.send(Buffer.isBuffer(upstream.body) && upstream.body.length === 0 ? undefined : upstream.body)
      }
      const config = { oboRoute: route.prefix }
      scope.route({ method: ALL_METHODS, url: route.prefix, preHandler, handler, config })
      scope.route({ method: ALL_METHODS, url: `${route.prefix}/*`, preHandler, handler, config })
    })
  }
}

// authorize() has already refused callers whose kind has no block on this route. One shared empty
// list: scope lists are remembered by identity (normalized scopes, OBO cache keys).
const NO_SCOPES: readonly string[] = []

function userScopes (route: RouteConfig): readonly string[] {
  return route.user?.scopes ?? NO_SCOPES
}

function appScopes (route: RouteConfig): readonly string[] {
  return route.app?.scopes ?? NO_SCOPES
}

export default proxyRoutes
