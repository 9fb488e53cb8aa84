import Fastify, { type FastifyInstance } from 'fastify'
import entraAuth from '../../plugins/entra-auth'
import errorResponses from '../../plugins/error-responses'
import { correlationId } from '../http/correlation-id'

/** An Entra app registration a dev server answers for: the only audiences it accepts. */
export interface ProtectedAppRegistration {
  instance: string
  tenantId: string
  clientId: string
  identifierUri: string
  /** More registrations whose tokens it accepts, e.g. the dev stack's MFA-protected APIs behind the sample API. */
  alsoAccept?: string[]
  ca?: string[]
}

/**
 * A Fastify app set up as a customer protects an API with plugins/entra-auth: Entra-style error
 * bodies, and tokens accepted only when issued for this registration (never the caller's own).
 */
export async function buildProtectedApp (registration: ProtectedAppRegistration): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, genReqId: correlationId })
  await app.register(errorResponses, { instance: registration.instance, tenantId: registration.tenantId, clientId: registration.clientId })
  await app.register(entraAuth, {
    instance: registration.instance,
    tenantId: registration.tenantId,
    audiences: [registration.clientId, registration.identifierUri, ...(registration.alsoAccept ?? [])],
    ...(registration.ca ? { ca: registration.ca } : {})
  })
  return app
}
