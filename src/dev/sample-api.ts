import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify'
import { buildProtectedApp, type ProtectedAppRegistration } from './protected-app'

/** The sample API's own app registration, and: */
export interface SampleApiOptions extends ProtectedAppRegistration {
  /**
   * Makes the API a CAE-enabled resource like Microsoft Graph: the user's latest session revocation
   * time (seconds), e.g. the emulator's `revocationTime`. A user token issued before it is refused
   * with Graph's CAE claims challenge.
   */
  revocationTime?: (tenantId: string, userObjectId: string) => number | undefined
}

export const CAE_DESCRIPTION = 'Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp'

/**
 * A downstream API protected by Entra, as a customer would write one with plugins/entra-auth: it
 * accepts only tokens issued for itself and answers with what it was given, so a caller can see
 * the downstream token the gateway obtained.
 */
export async function buildSampleApi (options: SampleApiOptions): Promise<FastifyInstance> {
  const app = await buildProtectedApp(options)

  const preHandler: preHandlerAsyncHookHandler[] = [app.entraRequire({ user: { requireScopes: ['Items.Read', 'Items.Write'] }, app: { requireRoles: ['Items.Read.All'] } })]
  const revocationTime = options.revocationTime
  if (revocationTime !== undefined) {
    preHandler.push(async (request, reply) => {
      const principal = request.principal
      if (principal?.kind !== 'user') return
      const revokedAt = revocationTime(principal.tenantId, principal.objectId)
      const iat = request.entraClaims?.iat
      if (revokedAt === undefined || (typeof iat === 'number' && iat >= revokedAt)) return
      // Microsoft Graph's CAE answer, byte for byte: authorization_uri unquoted, camelCase errorDescription.
      const claims = Buffer.from(`{"access_token":{"nbf":{"essential":true, "value":"${revokedAt}"}}}`).toString('base64')
      return await reply.code(401).header('www-authenticate',
        `Bearer realm="", authorization_uri=${options.instance}/common/oauth2/authorize, client_id="${options.clientId}", error="insufficient_claims", claims="${claims}", errorDescription="${CAE_DESCRIPTION}"`
      ).send({ error: { code: 'InvalidAuthenticationToken', message: CAE_DESCRIPTION } })
    })
  }

  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/*',
    preHandler,
    handler: async (request) => {
      const claims = request.entraClaims ?? {}
      return {
        api: 'sample-api',
        method: request.method,
        url: request.url,
        caller: request.principal,
        token: pick(claims, ['aud', 'iss', 'tid', 'oid', 'azp', 'appid', 'scp', 'roles', 'idtyp', 'ver', 'name', 'preferred_username', 'amr', 'iat', 'xms_cc', 'acrs']),
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
