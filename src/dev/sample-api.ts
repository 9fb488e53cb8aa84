import Fastify, { type FastifyInstance } from 'fastify'
import entraAuth from '../../plugins/entra-auth'
import errorResponses from '../../plugins/error-responses'
import { correlationId } from '../http/correlation-id'

export interface SampleApiOptions {
  instance: string
  tenantId: string
  /** The sample API's own app registration. */
  clientId: string
  identifierUri: string
  ca?: string[]
}

/**
 * A downstream API protected by Entra, as a customer would write one with plugins/entra-auth: it
 * accepts only tokens issued for itself and answers with what it was given, so a caller can see
 * the downstream token the gateway obtained.
 */
export async function buildSampleApi (options: SampleApiOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, genReqId: correlationId })
  await app.register(errorResponses, { instance: options.instance, tenantId: options.tenantId, clientId: options.clientId })
  await app.register(entraAuth, {
    instance: options.instance,
    tenantId: options.tenantId,
    audiences: [options.clientId, options.identifierUri],
    ...(options.ca ? { ca: options.ca } : {})
  })

  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/*',
    preHandler: app.entraRequire({ user: { requireScopes: ['Items.Read', 'Items.Write'] }, app: { requireRoles: ['Items.Read.All'] } }),
    handler: async (request) => {
      const claims = request.entraClaims ?? {}
      return {
        api: 'sample-api',
        method: request.method,
        url: request.url,
        caller: request.principal,
        token: pick(claims, ['aud', 'iss', 'tid', 'oid', 'azp', 'appid', 'scp', 'roles', 'idtyp', 'ver', 'name', 'preferred_username']),
        forwarded: pick(request.headers, ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'client-request-id']),
        ...(request.body !== undefined ? { body: request.body } : {})
      }
    }
  })
  return app
}

function pick (source: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => source[k] !== undefined).map((k) => [k, source[k]]))
}
