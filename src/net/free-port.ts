import { createServer } from 'node:net'

/**
 * A port nothing listens on right now. An MCP route's publicUrl must name the port clients use,
 * so a stack asked for "any port" picks one before the gateway's config is built.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}
