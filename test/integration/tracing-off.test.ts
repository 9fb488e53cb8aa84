import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { startTestbed } from '../helpers/testbed'

// Its own file, so its own process: tracing.test.ts loads the SDK into the process it runs in, the
// Redis tests ioredis.
t.test('without tracing configured, the SDK is never loaded and the client\'s trace context passes unchanged; without Redis, ioredis is not loaded either', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/rec', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
  }, { source: 'test', env: {} })
  t.equal(config.telemetry, undefined)
  const gateway = await buildGateway(config)
  t.teardown(() => gateway.close())
  t.equal(gateway.tracing, null)
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 })

  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const res = await request(`${url}/rec/items`, { headers: { authorization: `Bearer ${(await kit.signIn()).accessToken}`, traceparent, tracestate: 'vendor=opaque' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const seen = recorder.requests.at(-1)!
  t.equal(seen.headers.traceparent, traceparent, 'a gateway that does not trace is not a hop in the trace')
  t.equal(seen.headers.tracestate, 'vendor=opaque')

  const loaded = Object.keys(require.cache).filter((file) => /@opentelemetry[\\/]sdk-|[\\/]observability[\\/]tracing-sdk\./.test(file))
  t.same(loaded, [], 'no @opentelemetry/sdk-* module and not the gateway\'s SDK module')
  t.same(Object.keys(require.cache).filter((file) => /[\\/]node_modules[\\/]ioredis[\\/]/.test(file)), [], 'no tokenCache.redisUrl: ioredis stays out of the heap')
})
