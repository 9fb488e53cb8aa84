import { createServer, type Server } from 'node:https'
import { dirname } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request, type Dispatcher } from 'undici'
import { DEV_IDS, type RunningEmulator } from '../../../src/emulator'
import { prepareTls } from '../../../src/emulator/ca'
import { createHttpsAgent } from '../../../src/net/https-agent'
import { startUpstreamRecorder } from '../../../test/helpers/upstream-recorder'
import { drive, gatewayConfig, report, sleep, startIdentity, startLocalGateway } from '../rig'

type Mode = 'ok' | 'fail' | 'hang'

/** The emulator behind a TLS front (same CA) whose JWKS endpoint fails or hangs on demand. */
async function jwksFront (emulator: RunningEmulator, agent: Dispatcher): Promise<{ url: string, mode: { value: Mode }, server: Server }> {
  const tls = await prepareTls(dirname(emulator.caFile), ['127.0.0.1'])
  const mode = { value: 'ok' as Mode }
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    if (req.url?.endsWith('/discovery/v2.0/keys') === true && mode.value !== 'ok') {
      if (mode.value === 'fail') res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}')
      return
    }
    request(`${emulator.url}${req.url ?? '/'}`, { dispatcher: agent }).then(async (answer) => {
      res.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') })
      res.end(Buffer.from(await answer.body.arrayBuffer()))
    }, () => { res.writeHead(502).end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, mode, server }
}

const PHASE_SECONDS = 10
const TIMEOUT_MS = 3000

/**
 * A key rollover while the JWKS endpoint fails, then hangs: tokens of the new key must get 503
 * identity_unavailable (never 401, which makes clients drop good tokens) within identity.timeoutMs,
 * tokens of the old key keep passing, and once the JWKS answers the new key is learned. Validation
 * only (a /whoami route): the metadata behind the front names the emulator's own token endpoint.
 */
export async function jwks (): Promise<void> {
  const identity = await startIdentity()
  const agent = createHttpsAgent({ ca: [identity.emulator.caPem] })
  const front = await jwksFront(identity.emulator, agent)
  const recorder = await startUpstreamRecorder()
  const { app, url } = await startLocalGateway(
    gatewayConfig(identity.emulator, recorder.url, { identity: { instance: front.url, timeoutMs: TIMEOUT_MS, keyRefreshCooldownSeconds: 1 } }),
    (gateway) => { gateway.get('/whoami', async (req) => ({ oid: (await gateway.entraAuthenticate(req)).objectId })) })
  const oldKey = Array.from({ length: 100 }, identity.newUser)
  const lines: string[] = []
  const phase = async (name: string): Promise<void> => {
    const [o, n] = await Promise.all([
      drive(url, { seconds: PHASE_SECONDS, concurrency: 8, next: (i) => ({ path: '/whoami', token: oldKey[i % oldKey.length] }) }),
      drive(url, { seconds: PHASE_SECONDS, concurrency: 8, next: () => ({ path: '/whoami', token: identity.newUser() }) })
    ])
    lines.push(`${name}, tokens minted before the rollover: ${o.summary()}`)
    lines.push(`${name}, fresh tokens (the emulator's newest key): ${n.summary()}`)
  }
  const probe = async (): Promise<string> => {
    const res = await request(`${url}/whoami`, { headers: { authorization: `Bearer ${identity.newUser()}` } })
    const body = await res.body.json() as { error?: string }
    return `${res.statusCode} ${body.error ?? ''} Retry-After: ${String(res.headers['retry-after'] ?? 'none')}`
  }
  const readiness = async (): Promise<string> => {
    const res = await request(`${url}/readyz`)
    return `${res.statusCode} ${(await res.body.json() as { status: string }).status}`
  }
  await phase('keys current')
  await identity.emulator.keys.rotate(DEV_IDS.tenantId)
  front.mode.value = 'fail'
  await sleep(1100)
  lines.push(`rolled over, JWKS answering 500: a new-key token gets ${await probe()}; /readyz ${await readiness()}`)
  await phase('JWKS 500')
  front.mode.value = 'hang'
  await sleep(1100)
  lines.push(`JWKS hanging: a new-key token gets ${await probe()}; /readyz ${await readiness()}`)
  await phase(`JWKS hanging (identity.timeoutMs ${TIMEOUT_MS} ms)`)
  front.mode.value = 'ok'
  await sleep(1100)
  await phase('JWKS back')
  lines.push(`/readyz ${await readiness()}`)
  await app.close()
  front.server.closeAllConnections()
  front.server.close()
  await agent.close()
  await recorder.close()
  await identity.close()
  report('jwks: the JWKS endpoint failing during a key rollover', lines)
}
