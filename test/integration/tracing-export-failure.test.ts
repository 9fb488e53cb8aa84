import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { startTestbed } from '../helpers/testbed'

// Read by the SDK from the environment (this file runs in its own process): export soon, give up soon.
process.env.OTEL_BSP_SCHEDULE_DELAY = '50'
process.env.OTEL_EXPORTER_OTLP_TIMEOUT = '500'

t.test('a collector that cannot be reached: requests are served, the log says so once', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  // A port nothing listens on any more.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const closedPort = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))

  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const gateway = await buildGateway(resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/rec', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }],
    telemetry: { otlpEndpoint: `http://127.0.0.1:${closedPort}`, protocol: 'http/json' }
  }, { source: 'test', env: {} }), { logger: { level: 'warn', stream } })
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 })
  const bearer = `Bearer ${(await kit.signIn()).accessToken}`
  for (let i = 0; i < 3; i++) {
    const res = await request(`${url}/rec/x`, { headers: { authorization: bearer } })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  const failures = (): Array<Record<string, unknown>> => lines.filter((line) => line.msg === 'tracing: spans could not be exported')
  while (failures().length === 0) await new Promise((resolve) => setTimeout(resolve, 50))
  for (let i = 0; i < 3; i++) {
    const res = await request(`${url}/rec/x`, { headers: { authorization: bearer } })
    t.equal(res.statusCode, 200, 'still served after a failed export')
    await res.body.dump()
  }
  await gateway.close()
  t.equal(failures().length, 1, 'one line per 10 s, not one per failed batch')
  t.match(failures()[0], { level: 40, tracesUrl: `http://127.0.0.1:${closedPort}/v1/traces`, err: { message: String } })
})
