import type { FastifyInstance } from 'fastify'
import { createDecoder } from 'fast-jwt'
import { parseBasic, type TokenParams } from './client-auth'
import { MULTI_TENANT_SEGMENTS, type Directory } from './directory'
import { EntraError, missingParameter, tenantNotFound } from './entra-errors'
import { clientCredentialsGrant } from './grants/client-credentials'
import type { Grant } from './grants/grant'
import { JWT_BEARER, onBehalfOfGrant } from './grants/on-behalf-of'
import { passwordGrant } from './grants/password'
import type { Keyring } from './keyring'
import type { SeedTenant } from './seed'
import type { TokenIssuer } from './tokens'

export interface TokenRequestRecord {
  grantType: string
  clientId: string
  tenantId: string
  at: number
}

export interface TokenEndpointDependencies {
  directory: Directory
  keyring: Keyring
  issuer: TokenIssuer
  record: (entry: TokenRequestRecord) => void
}

const GRANTS = new Map<string, Grant>([
  ['password', passwordGrant],
  [JWT_BEARER, onBehalfOfGrant],
  ['client_credentials', clientCredentialsGrant]
])

const decode = createDecoder()

export function registerTokenEndpoint (app: FastifyInstance, deps: TokenEndpointDependencies): void {
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/token', async (request) => {
    const params = (request.body ?? {}) as TokenParams
    const grantType = params.grant_type ?? ''
    let tenantId = request.params.tenant
    try {
      if (grantType === '') throw missingParameter('grant_type')
      const grant = GRANTS.get(grantType)
      if (grant === undefined) throw new EntraError('unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`)
      const missing = grant.required.find((name) => (params[name] ?? '') === '')
      if (missing !== undefined) throw missingParameter(missing)
      const tenant = resolveTenant(deps.directory, request.params.tenant, grantType, params)
      tenantId = tenant.id
      return await grant.issue({ ...deps, tenant, params, authorization: request.headers.authorization })
    } finally {
      const clientId = params.client_id ?? parseBasic(request.headers.authorization)?.clientId ?? ''
      deps.record({ grantType, clientId, tenantId, at: Date.now() })
    }
  })
}

/**
 * `common`/`organizations` name no tenant, so Entra finds it from the request: the user's home
 * tenant for the password grant, the assertion's `tid` for OBO (the grant then verifies that token).
 */
function resolveTenant (directory: Directory, segment: string, grantType: string, params: TokenParams): SeedTenant {
  if (!MULTI_TENANT_SEGMENTS.has(segment.toLowerCase())) {
    const tenant = directory.tenant(segment)
    if (tenant === undefined) throw tenantNotFound(segment)
    return tenant
  }
  if (grantType === 'password') {
    const tenant = directory.tenantOfUser(params.username ?? '')
    if (tenant === undefined) throw new EntraError('invalid_grant', 50034, `The user account ${params.username ?? ''} does not exist in any tenant of this emulator.`)
    return tenant
  }
  if (grantType === JWT_BEARER) {
    let tid: unknown
    try {
      tid = (decode(params.assertion ?? '') as { tid?: unknown }).tid
    } catch {
      throw new EntraError('invalid_grant', 50027, 'JWT token is invalid or malformed.')
    }
    const tenant = typeof tid === 'string' ? directory.tenant(tid) : undefined
    if (tenant === undefined) throw tenantNotFound(String(tid))
    return tenant
  }
  throw new EntraError('invalid_request', 9001023, `The grant type isn't supported over the /${segment} endpoint. Use the tenant-specific endpoint.`)
}
