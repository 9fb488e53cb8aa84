import { connect } from 'node:net'
import { startSpecialUpstream } from '../../../test/helpers/special-upstreams'
import { startGatewayChild } from '../gateway-child'
import type { GatewayStats } from '../gateway-process'
import { gatewayConfig, report, shoot, sleep, startIdentity } from '../rig'
import { Pool } from 'undici'

type Kind = 'upload' | 'hang' | 'download'

/** Opens a raw connection, sends a request that will not complete, and drops it once it is under way. */
async function abortOne (port: number, kind: Kind, token: string): Promise<void> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => { resolve() }))
  const auth = `authorization: Bearer ${token}\r\n`
  if (kind === 'upload') {
    // Within the replay limit (64 KiB), so the gateway buffers it before forwarding.
    socket.write(`POST /api/sink HTTP/1.1\r\nhost: x\r\n${auth}content-type: text/plain\r\ncontent-length: 4000\r\n\r\n${'a'.repeat(100)}`)
    await sleep(30)
  } else if (kind === 'hang') {
    socket.write(`GET /api/hang HTTP/1.1\r\nhost: x\r\n${auth}\r\n`)
    await sleep(50)
  } else {
    socket.write(`GET /api/bytes?n=50000000 HTTP/1.1\r\nhost: x\r\n${auth}\r\n`)
    await new Promise<void>((resolve) => { socket.once('data', () => { resolve() }) })
  }
  socket.destroy()
  await closed
}

const sockets = (s: GatewayStats): number => s.resources.TCPSocketWrap ?? 0
const describe = (s: GatewayStats): string =>
  `${s.connections} client connections, ${sockets(s)} TCP sockets, ${Object.values(s.resources).reduce((a, b) => a + b, 0)} active handles and requests (${JSON.stringify(s.resources)}), RSS ${(s.rssBytes / 2 ** 20).toFixed(0)} MiB`

/**
 * Clients that give up: a buffered upload dropped halfway, a request dropped while the upstream
 * has not answered, a 50 MB download dropped after its first bytes, in turn, 20 at a time, against
 * the gateway in its own process. Counts its open sockets and handles before and after, and what
 * it logged (a 499 each, no error line, no stack).
 */
export async function aborts (options: { aborts: number }): Promise<void> {
  const identity = await startIdentity()
  const upstream = await startSpecialUpstream()
  const gateway = await startGatewayChild(gatewayConfig(identity.emulator, upstream.url))
  const token = identity.alice
  const warm = new Pool(gateway.url, { connections: 1 })
  await shoot(warm, { token, path: '/api/echo' })
  await warm.close()
  await sleep(500)
  const before = await gateway.stats()
  const logBefore = { lines: gateway.logs.lines, errors: gateway.logs.errors, aborted: gateway.logs.byStatus.get(499) ?? 0 }
  const port = Number(new URL(gateway.url).port)
  const kinds: Kind[] = ['upload', 'hang', 'download']
  const started = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < options.aborts) {
      const i = next++
      await abortOne(port, kinds[i % kinds.length]!, token)
    }
  }))
  const seconds = (performance.now() - started) / 1000
  await sleep(2000)
  const after = await gateway.stats()
  const cancelledUpstream = upstream.events.filter((e) => e === 'aborted').length
  const pool = new Pool(gateway.url, { connections: 1 })
  const healthy = await shoot(pool, { token, path: '/api/echo' })
  await pool.close()
  await gateway.stop()
  await upstream.close()
  await identity.close()
  report(`aborts: ${options.aborts.toLocaleString('en-US')} client aborts (uploads, waits on a hanging upstream, downloads), 20 at a time`, [
    `done in ${seconds.toFixed(1)} s`,
    `before: ${describe(before)}`,
    `after (2 s later): ${describe(after)}`,
    `socket leak: ${sockets(after) - sockets(before)} TCP sockets, ${after.connections - before.connections} client connections`,
    `logged: ${(gateway.logs.byStatus.get(499) ?? 0) - logBefore.aborted} request lines with status 499, ${gateway.logs.errors - logBefore.errors} error lines, ${gateway.logs.withStack} with a stack, ${gateway.logs.withToken} with a token`,
    `request lines by status: ${JSON.stringify(Object.fromEntries(gateway.logs.byStatus))} (one 200 is the warm-up, one the check afterwards)`,
    `upstream requests the gateway cancelled (the upstream saw 'aborted'): ${cancelledUpstream}`,
    `a normal request afterwards: ${healthy.status}`
  ])
}
