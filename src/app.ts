import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import cors from '@fastify/cors'
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
  if (config.server.cors !== undefined) {
    const { origins, credentials, exposedHeaders, maxAgeSeconds } = config.server.cors
    await app.register(cors, {
      origin: origins,
      credentials,
      // Without these a browser hides the challenge and the correlation id from MSAL.js.
      exposedHeaders: ['WWW-Authenticate', 'client-request-id', ...exposedHeaders],
      maxAge: maxAgeSeconds,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      // Preflights are answered here, before authentication; any OPTIONS request is one.
      strictPreflight: false
    })
  }
  await app.register(entraAuth, {
    instance: identity.instance,
    tenantId: identity.tenantId,
    allowedTenants: identity.allowedTenants,
    audiences: identity.audiences,
    clockSkewSeconds: identity.clockSkewSeconds,
    keyRefreshCooldownSeconds: identity.keyRefreshCooldownSeconds,
    ca: identity.extraCaPems
  })
  await app.register(tokenAcquisition, { identity, tokenCache: config.tokenCache })
  await app.register(health)
  await app.register(proxyRoutes, { config })
  return app
}
