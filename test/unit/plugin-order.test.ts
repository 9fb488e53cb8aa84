import t from 'tap'
import Fastify from 'fastify'
import { resolveConfig } from '../../src/config/load'
import { GatewayMetrics } from '../../src/observability/metrics'
import entraAuth from '../../plugins/entra-auth'
import observability from '../../plugins/observability'
import tokenAcquisition from '../../plugins/token-acquisition'
import proxyRoutes from '../../routes/proxy'

const TENANT = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'
const config = (extra: Record<string, unknown> = {}) => resolveConfig({
  ...extra,
  identity: { instance: 'https://127.0.0.1:1', tenantId: TENANT, clientId: TENANT, credential: { clientSecret: 's' } },
  routes: [{ prefix: '/api', upstream: 'http://127.0.0.1:1', user: { requireScopes: ['a'], scopes: ['b'] } }]
}, { source: 'test', env: {} })

async function boot (register: (app: ReturnType<typeof Fastify>) => void): Promise<void> {
  const app = Fastify()
  try {
    register(app)
    await app.ready()
  } finally {
    await app.close()
  }
}

t.test('the proxy routes refuse to boot without the plugins they rely on, naming what is missing', async (t) => {
  const gateway = config()
  await t.rejects(boot((app) => { app.register(proxyRoutes, { config: gateway }) }), {
    code: 'FST_ERR_PLUGIN_NOT_PRESENT_IN_INSTANCE',
    message: /'metrics' required by 'obo-gateway-proxy-routes'/
  })
  await t.rejects(boot((app) => {
    app.register(observability, { metrics: new GatewayMetrics() })
    app.register(proxyRoutes, { config: gateway })
    app.register(entraAuth, { instance: gateway.identity.instance, tenantId: TENANT, audiences: [TENANT] })
    app.register(tokenAcquisition, { identity: gateway.identity, tokenCache: gateway.tokenCache })
  }), { message: /'entraAuthenticate' required by 'obo-gateway-proxy-routes'/ }, 'registered before entra-auth')
  await t.resolves(boot((app) => {
    app.register(observability, { metrics: new GatewayMetrics() })
    app.register(entraAuth, { instance: gateway.identity.instance, tenantId: TENANT, audiences: [TENANT] })
    app.register(tokenAcquisition, { identity: gateway.identity, tokenCache: gateway.tokenCache })
    app.register(proxyRoutes, { config: gateway })
  }), 'in order it boots')
})

t.test('with server.rateLimit, the rate limiter must come first', async (t) => {
  const gateway = config({ server: { rateLimit: { max: 1, windowSeconds: 1, key: 'user' } } })
  await t.rejects(boot((app) => {
    app.register(observability, { metrics: new GatewayMetrics() })
    app.register(entraAuth, { instance: gateway.identity.instance, tenantId: TENANT, audiences: [TENANT] })
    app.register(tokenAcquisition, { identity: gateway.identity, tokenCache: gateway.tokenCache })
    app.register(proxyRoutes, { config: gateway })
  }), { message: /server\.rateLimit is set, so @fastify\/rate-limit must be registered before the proxy routes/ })
})
