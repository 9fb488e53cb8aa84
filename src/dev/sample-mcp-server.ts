import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js'
import { z } from 'zod'
import { buildProtectedApp, type ProtectedAppRegistration } from './protected-app'

/** The MCP server's own app registration (the only audience it accepts), and: */
export interface SampleMcpServerOptions extends ProtectedAppRegistration {
  /** The scope a token must carry (scp), e.g. Tools.Invoke. */
  requireScope: string
}

/** What the MCP server itself saw of the token it was called with. */
export interface ReceivedToken {
  aud: unknown
  scp: unknown
  oid: unknown
  azp: unknown
  tid: unknown
}

/**
 * An MCP server as a customer would write one: the official SDK (McpServer over streamable HTTP,
 * stateful sessions, resumable streams) behind plugins/entra-auth, so it accepts only tokens
 * issued for itself, never the MCP client's own. Two tools: `whoami` answers with the token the
 * server received (streaming a progress event first when the caller asks for progress), and
 * `delete_item`, which the dev gateway guards with an extra scope.
 */
export async function buildSampleMcpServer (options: SampleMcpServerOptions): Promise<FastifyInstance> {
  const app = await buildProtectedApp(options)

  const sessions = new Map<string, StreamableHTTPServerTransport>()
  app.addHook('onClose', async () => {
    await Promise.all([...sessions.values()].map((transport) => transport.close()))
  })

  app.route({
    method: ['GET', 'POST', 'DELETE'],
    url: '/mcp',
    preHandler: app.entraRequire({ user: { requireScopes: [options.requireScope] } }),
    handler: async (request, reply) => {
      const claims = request.entraClaims ?? {}
      const received: ReceivedToken = { aud: claims.aud, scp: claims.scp, oid: claims.oid, azp: claims.azp, tid: claims.tid }
      const sessionId = request.headers['mcp-session-id']
      let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined
      if (transport === undefined && sessionId === undefined && request.method === 'POST') {
        transport = newSession(sessions)
      }
      if (transport === undefined) {
        return await reply.code(404).send({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null })
      }
      reply.hijack()
      const raw = Object.assign(request.raw, { auth: { token: '', clientId: String(claims.azp ?? ''), scopes: String(claims.scp ?? '').split(' '), extra: { received } } })
      await transport.handleRequest(raw, reply.raw, request.body)
    }
  })
  return app
}

function newSession (sessions: Map<string, StreamableHTTPServerTransport>): StreamableHTTPServerTransport {
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    eventStore: new InMemoryEventStore(),
    onsessioninitialized: (id) => { sessions.set(id, transport) },
    onsessionclosed: (id) => { sessions.delete(id) }
  })
  transport.onclose = () => {
    if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
  }
  const server = mcpServer()
  server.connect(transport).catch(() => { transport.close().catch(() => {}) })
  return transport
}

function mcpServer (): McpServer {
  const server = new McpServer({ name: 'obo-gateway-sample-mcp-server', version: '1.0.0' })
  server.registerTool('whoami', {
    description: 'The access token this MCP server received (audience, scopes, user), as the gateway obtained it on the user\'s behalf',
    inputSchema: { steps: z.number().int().min(0).max(20).optional().describe('progress events to stream before the answer') }
  }, async ({ steps }, extra) => {
    const progressToken = extra._meta?.progressToken
    if (progressToken !== undefined) {
      for (let progress = 1; progress <= (steps ?? 1); progress++) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: steps ?? 1 } })
        await sleep(10)
      }
    }
    const received = (extra.authInfo?.extra as { received?: ReceivedToken } | undefined)?.received
    return { content: [{ type: 'text', text: JSON.stringify(received) }], structuredContent: { ...received } }
  })
  server.registerTool('delete_item', {
    description: 'Deletes an item (the gateway asks for an extra scope before it lets this call through)',
    inputSchema: { id: z.string().min(1) }
  }, async ({ id }, extra) => {
    const received = (extra.authInfo?.extra as { received?: ReceivedToken } | undefined)?.received
    return { content: [{ type: 'text', text: `deleted ${id} for ${String(received?.oid)}` }] }
  })
  return server
}
