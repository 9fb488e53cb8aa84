import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import type { GatewayConfig, RouteConfig } from '../src/config/types'
import { Forwarder } from '../src/forwarding/forwarder'
import { authorize } from '../src/validation/requirements'
import { assertionOf } from '../plugins/entra-auth'

const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** One proxied route per config entry: authenticate, authorize, acquire, forward. */
const proxyRoutes: FastifyPluginAsync<{ config: GatewayConfig }> = async (fastify, { config }) => {
  for (const route of config.routes) {
    await fastify.register(async (scope) => {
      // Bodies stream through untouched: no parsing, no buffering.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

      const forwarder = new Forwarder(route)
      scope.addHook('onClose', async () => { await forwarder.close() })

      const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        const principal = await scope.entraAuthenticate(request)
        authorize(principal, route)
        const path = forwarder.pathFor(request.raw.url ?? request.url)
        const token = principal.kind === 'user'
          ? await scope.tokenAcquirer.forUser(principal, assertionOf(request), userScopes(route))
          : await scope.tokenAcquirer.forApp(principal, appScopes(route))

        const abort = new AbortController()
        reply.raw.on('close', () => { if (!reply.raw.writableFinished) abort.abort() })
        const upstream = await forwarder.forward({
          method: request.method,
          path,
          headers: request.headers,
          body: request.body as Readable | undefined,
          signal: abort.signal
        }, {
          downstreamToken: token.accessToken,
          clientIp: request.ip,
          protocol: request.protocol,
          host: request.headers.host,
          correlationId: request.id
        })
        return await reply.code(upstream.status).headers(upstream.headers).send(upstream.body)
      }
      scope.route({ method: ALL_METHODS, url: route.prefix, handler })
      scope.route({ method: ALL_METHODS, url: `${route.prefix}/*`, handler })
    })
  }
}

// authorize() has already refused callers whose kind has no block on this route.
function userScopes (route: RouteConfig): string[] {
  return route.user?.scopes ?? []
}

function appScopes (route: RouteConfig): string[] {
  return route.app?.scopes ?? []
}

export default proxyRoutes
