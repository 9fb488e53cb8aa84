/**
 * The gateway in a process of its own, for the runs that measure it (aborts, soak): its RSS, event
 * loop and open handles are then its own, not the load generator's or the emulator's. Started by
 * gateway-child.ts with the configuration file's contents as argument; logs to stdout as `npm start`
 * does (level info, tokens redacted); answers 'stats' and 'close' over IPC.
 */
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { buildGateway, LOG_REDACTIONS } from '../../src/app'
import { resolveConfig } from '../../src/config/load'

export interface GatewayStats {
  rssBytes: number
  heapUsedBytes: number
  /** Event-loop delay since the previous stats, ms. */
  loopDelay: { p50: number, p99: number, max: number }
  /** process.getActiveResourcesInfo(), counted by kind (TCPSocketWrap is one per open socket). */
  resources: Record<string, number>
  /** Open client connections of the gateway's server. */
  connections: number
  /** Tokens in the token cache's L1: shows when a bounded cache has filled. */
  l1Entries: number
}

async function main (): Promise<void> {
  const config = resolveConfig(JSON.parse(process.argv[2] ?? '{}'), { source: 'chaos' })
  const app = await buildGateway(config, { logger: { level: 'info', redact: LOG_REDACTIONS } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  process.on('message', (message: string) => {
    if (message === 'close') {
      app.close().finally(() => process.exit(0))
      return
    }
    app.server.getConnections((_err, connections) => {
      const resources: Record<string, number> = {}
      for (const kind of process.getActiveResourcesInfo()) resources[kind] = (resources[kind] ?? 0) + 1
      const memory = process.memoryUsage()
      const stats: GatewayStats = {
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        loopDelay: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
        resources,
        connections,
        l1Entries: app.tokenAcquirer.status().l1.entries
      }
      delay.reset()
      process.send?.(stats)
    })
  })
  process.send?.({ port: (app.server.address() as AddressInfo).port })
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
