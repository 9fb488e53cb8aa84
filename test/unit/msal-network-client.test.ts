import { createHook } from 'node:async_hooks'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Agent } from 'undici'
import { EntraUnavailableError, MsalNetworkClient } from '../../src/acquisition/msal-network-client'

async function listen (t: Test, answer: boolean): Promise<string> {
  const server: Server = createServer((req, res) => {
    req.resume()
    if (!answer) return
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"x"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/tenant/oauth2/v2.0/token?client-request-id=abc`
}

/** Node timers created and not yet cleared or fired while `during` runs. */
async function timersLeft (during: () => Promise<void>): Promise<number> {
  const live = new Set<number>()
  const hook = createHook({
    init: (id, type) => { if (type === 'Timeout') live.add(id) },
    destroy: (id) => { live.delete(id) }
  }).enable()
  try {
    await during()
    // destroy hooks run asynchronously after clearTimeout.
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    hook.disable()
  }
  return live.size
}

t.test('an answered call leaves no deadline timer behind', async (t) => {
  const url = await listen(t, true)
  const agent = new Agent()
  t.teardown(() => agent.close())
  const client = new MsalNetworkClient(agent, { timeoutMs: 60_000 })
  await client.sendPostRequestAsync(url, { body: 'a=b' })
  const left = await timersLeft(async () => {
    for (let i = 0; i < 20; i++) t.equal((await client.sendPostRequestAsync<{ access_token: string }>(url, { body: 'a=b' })).body.access_token, 'x')
  })
  t.ok(left < 20, `not one timer per call left pending for timeoutMs after its answer (${left} left after 20 calls)`)
})

t.test('a call with no answer within timeoutMs fails as a timeout', async (t) => {
  const url = await listen(t, false)
  const agent = new Agent()
  t.teardown(() => agent.close())
  const err = await new MsalNetworkClient(agent, { timeoutMs: 200 }).sendPostRequestAsync(url, { body: 'a=b' }).catch((e: unknown) => e)
  t.ok(err instanceof EntraUnavailableError && err.reason === 'timeout', 'EntraUnavailableError, reason timeout')
  t.match((err as Error).message, /did not answer within 200 ms/)
  t.notMatch((err as Error).message, /\?/, 'no query string in the message')
})
