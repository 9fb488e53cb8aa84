import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { Agent, request } from 'undici'
import { fetchFailure, fetchJson } from '../../src/net/fetch-json'
import { createHttpsAgent } from '../../src/net/https-agent'
import { freePort } from '../../src/net/free-port'

t.test('an agent trusting an extra CA builds its trust once, not on every connection attempt', async (t) => {
  // Parsing the public roots plus the extra CA costs tens of ms of CPU; while Entra refuses
  // connections every OBO call is a new connection attempt.
  const original = tls.createSecureContext
  let built = 0
  tls.createSecureContext = (...args: Parameters<typeof original>) => { built++; return original(...args) }
  t.teardown(() => { tls.createSecureContext = original })
  const agent = createHttpsAgent({ ca: [tls.rootCertificates[0] ?? ''] })
  t.teardown(() => agent.close())
  const afterCreation = built
  const refused = await freePort()
  const outcomes: string[] = []
  for (let i = 0; i < 10; i++) {
    outcomes.push(await request(`https://127.0.0.1:${refused}/`, { dispatcher: agent }).then(() => 'answered', (err: { code?: string }) => err.code ?? 'error'))
  }
  t.same([...new Set(outcomes)], ['ECONNREFUSED'], 'every attempt was refused')
  t.equal(built - afterCreation, 0, '10 connection attempts built no TLS context')
})

t.test('fetchFailure says why a fetch failed in words that name no host or port', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/down') res.writeHead(503).end()
    else if (req.url === '/garbled') res.writeHead(200, { 'content-type': 'application/json' }).end('{')
    // /hang is never answered.
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  const agent = new Agent()
  t.teardown(() => agent.destroy())
  const up = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const refused = `127.0.0.1:${await freePort()}`
  const cases: Array<[string, string, string]> = [
    [`http://${refused}/`, 'ECONNREFUSED', refused],
    [`http://${up}/down`, 'HTTP 503', up],
    [`http://${up}/hang`, 'timeout', up],
    [`http://${up}/garbled`, 'invalid answer', up]
  ]
  for (const [url, expected, where] of cases) {
    const err = await fetchJson(url, agent, 300).then(() => undefined, (e: unknown) => e)
    t.equal(fetchFailure(err), expected, url)
    t.notOk(fetchFailure(err).includes(where.split(':')[1]!), `${expected}: no port`)
  }
})
