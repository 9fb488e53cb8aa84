import { createServer, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { startSpecialUpstream } from '../../../test/helpers/special-upstreams'
import { drive, gatewayConfig, report, shoot, startIdentity, startLocalGateway } from '../rig'
import { SAMPLE_USER_ROUTE } from '../../lib/sample-route'
import { Pool } from 'undici'

/** Answers that are not HTTP, or HTTP no parser should accept, one per connection in turn. */
const GARBAGE: Array<() => Buffer> = [
  () => randomBytes(512),
  () => Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort'),
  () => Buffer.from('HTTP/1.1 abc\r\n\r\n'),
  () => Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello'),
  () => Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n'),
  () => Buffer.from('HTTP/1.1 200 OK\r\nx-bad: a\u0000b\r\ncontent-length: 2\r\n\r\nok'),
  () => Buffer.from(`HTTP/1.1 200 OK\r\nx-huge: ${'h'.repeat(100_000)}\r\n\r\n`),
  () => Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')
]

async function garbageUpstream (): Promise<{ url: string, server: Server }> {
  let turn = 0
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => { socket.end(GARBAGE[turn++ % GARBAGE.length]!()) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

/**
 * Upstreams that reset the connection, reset halfway through an answer, never answer (route
 * headersMs 2 s) or answer garbage: each should be a 502 or 504 error body, promptly, and the
 * gateway should serve normal requests right after.
 */
export async function upstream (): Promise<void> {
  const identity = await startIdentity()
  const special = await startSpecialUpstream()
  const garbage = await garbageUpstream()
  const config = gatewayConfig(identity.emulator, special.url, { route: { timeouts: { headersMs: 2000, bodyMs: 2000 } } })
  ;(config.routes as unknown[]).push({ prefix: '/garbage', upstream: garbage.url, user: SAMPLE_USER_ROUTE })
  const { app, url } = await startLocalGateway(config)
  const token = identity.alice
  const cases: Array<{ name: string, path: string, requests: number, concurrency: number }> = [
    { name: 'connection reset before any answer', path: '/api/reset', requests: 5000, concurrency: 16 },
    { name: 'reset halfway through a 1 MB answer', path: '/api/half?n=1000000&then=reset', requests: 2000, concurrency: 16 },
    { name: 'garbage instead of HTTP (8 kinds in turn)', path: '/garbage/x', requests: 5000, concurrency: 16 },
    { name: 'no answer at all (route headersMs 2 s)', path: '/api/hang', requests: 200, concurrency: 50 }
  ]
  const lines: string[] = []
  for (const c of cases) {
    const tally = await drive(url, { seconds: 120, concurrency: c.concurrency, next: (i) => i < c.requests ? { path: c.path, token } : undefined })
    lines.push(`${c.name}: ${tally.summary()}; 500s: ${tally.count((s) => s === '500')}`)
  }
  const pool = new Pool(url, { connections: 4 })
  const after = await Promise.all(Array.from({ length: 20 }, async () => (await shoot(pool, { path: '/api/echo', token })).status))
  lines.push(`right after: ${after.filter((s) => s === '200').length} of 20 normal requests answered 200`)
  await pool.close()
  await app.close()
  await special.close()
  garbage.server.close()
  await identity.close()
  report('upstream: resets, hangs and garbage', lines)
}
