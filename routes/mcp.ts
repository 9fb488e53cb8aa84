import type { FastifyPluginAsync } from 'fastify'
import type { GatewayConfig } from '../src/config/types'
import { McpAuthorizationFacade } from '../src/mcp/facade'
import { protectedResourceMetadata } from '../src/mcp/metadata'
import { relayTokenRequest } from '../src/mcp/token-relay'
import { createHttpsAgent } from '../src/net/https-agent'
import { sendContinue } from '../src/server/expect-continue'

/**
 * What MCP clients use before their first call, per MCP route: its RFC 9728 metadata and the
 * authorization-server facade in front of Entra (metadata, authorize, token, registration).
 */
const mcpRoutes: FastifyPluginAsync<{ config: GatewayConfig }> = async (fastify, { config }) => {
  const mcpRoutes = config.routes.filter((route) => route.mcp !== undefined)
  if (mcpRoutes.length === 0) return
  const { identity } = config
  const dispatcher = createHttpsAgent({ ca: identity.extraCaPems })
  fastify.addHook('onClose', async () => { await dispatcher.close() })
  // Bodies read here are no one's in particular (token requests, registrations): invited at once.
  fastify.addHook('preParsing', (_request, reply, payload, done) => {
    sendContinue(reply.raw)
    done(null, payload)
  })
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, new URLSearchParams(body as string))
  })

  for (const route of mcpRoutes) {
    const mcp = route.mcp!
    const prefix = route.prefix
    const resourceMetadata = protectedResourceMetadata(prefix, mcp)
    const facade = new McpAuthorizationFacade(prefix, mcp, identity)
    const oauthMetadata = facade.metadata(false)
    const openidMetadata = facade.metadata(true)
    const local = (url: string): string => new URL(url).pathname

    fastify.get(`/.well-known/oauth-protected-resource${prefix}`, async () => resourceMetadata)
    fastify.get(`/.well-known/oauth-authorization-server${prefix}`, async () => oauthMetadata)
    fastify.get(`/.well-known/openid-configuration${prefix}`, async () => openidMetadata)

    fastify.get(local(facade.endpoints.authorize), async (request, reply) => {
      const query = new URLSearchParams((request.raw.url ?? '').split('?')[1] ?? '')
      return await reply.redirect(facade.authorizeRedirect(query), 302)
    })

    fastify.post(local(facade.endpoints.token), async (request, reply) => {
      const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams()
      const answer = await relayTokenRequest(facade.entraTokenEndpoint, facade.tokenForm(form), {
        dispatcher,
        timeoutMs: identity.timeoutMs ?? 10_000,
        origin: request.headers.origin
      })
      return await reply.code(answer.status).header('content-type', answer.contentType).header('cache-control', 'no-store').send(answer.body)
    })

    fastify.post(local(facade.endpoints.register), async (request, reply) => {
      return await reply.code(201).header('cache-control', 'no-store').send(facade.register(request.body))
    })
  }
}

export default mcpRoutes
