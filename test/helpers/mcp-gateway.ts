import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, type RunningEmulator } from '../../src/emulator'
import { freePort } from '../../src/net/free-port'

export const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`
export const ADMIN_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.toolsAdminScope}`

export interface McpGateway {
  gateway: FastifyInstance
  /** http://127.0.0.1:<port> */
  origin: string
  /** The MCP route's URL: `${origin}/mcp`. */
  url: string
}

/** The gateway with an `/mcp` route in front of `upstream`, as the dev stack wires it; `mcp` overrides parts of the block. */
export async function startMcpGateway (t: Test, emulator: RunningEmulator, upstream: string, mcp: Record<string, unknown> = {}, route: Record<string, unknown> = {}): Promise<McpGateway> {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const config = resolveConfig({
    // The machine running the tests may be busy: a slow event loop must not shed the test's requests.
    server: { host: '127.0.0.1', port, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(emulator),
    routes: [{
      prefix: '/mcp',
      upstream,
      user: { requireScopes: [DEV_IDS.gateway.scope], scopes: [`${DEV_IDS.mcpServer.identifierUri}/${DEV_IDS.mcpServer.scope}`] },
      mcp: {
        publicUrl: `${origin}/mcp`,
        clientId: DEV_IDS.mcpClient.clientId,
        redirectUris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
        scopesSupported: [GATEWAY_SCOPE],
        tools: { delete_item: { requireScopes: [DEV_IDS.gateway.toolsAdminScope] } },
        ...mcp
      },
      ...route
    }]
  }, { source: 'test' })
  const gateway = await buildGateway(config)
  t.teardown(() => gateway.close())
  await gateway.listen({ host: '127.0.0.1', port })
  return { gateway, origin, url: `${origin}/mcp` }
}
