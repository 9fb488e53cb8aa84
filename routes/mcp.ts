import type { FastifyPluginAsync } from 'fastify'
import type { GatewayConfig } from '../src/config/types'
import { protectedResourceMetadata } from '../src/mcp/metadata'

/** What MCP clients discover before their first call: per MCP route, its RFC 9728 metadata. */
const mcpRoutes: FastifyPluginAsync<{ config: GatewayConfig }> = async (fastify, { config }) => {
  for (const route of config.routes) {
    const mcp = route.mcp
    if (mcp === undefined) continue
    const resourceMetadata = protectedResourceMetadata(route.prefix, mcp)
    fastify.get(`/.well-known/oauth-protected-resource${route.prefix}`, async () => resourceMetadata)
  }
}

export default mcpRoutes
