import t from 'tap'
import tls from 'node:tls'
import { request } from 'undici'
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
