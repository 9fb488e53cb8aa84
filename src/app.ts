import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from './config/types'
import { correlationId } from './http/correlation-id'
import entraAuth from '../plugins/entra-auth'
import errorResponses from '../plugins/error-responses'
import tokenAcquisition from '../plugins/token-acquisition'
import health from '../routes/health'
import proxyRoutes from '../routes/proxy'

export interface BuildOptions {
  logger?: FastifyServerOptions['logger']
}

/** The gateway as a Fastify instance, not yet listening. */
export async function buildGateway (config: GatewayConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    genReqId: correlationId
  })
  const { identity } = config
  await app.register(errorResponses, { instance: identity.instance, tenantId: identity.tenantId, clientId: identity.clientId })
  await app.register(entraAuth, {
    instance: identity.instance,
    tenantId: identity.tenantId,
    allowedTenants: identity.allowedTenants,
    audiences: identity.audiences,
    clockSkewSeconds: identity.clockSkewSeconds,
    keyRefreshCooldownSeconds: identity.keyRefreshCooldownSeconds,
    ca: identity.extraCaPems
  })
  await app.register(tokenAcquisition, { identity })
  await app.register(health)
  await app.register(proxyRoutes, { config })
  return app
}
