import { timingSafeEqual, createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Directory } from './directory'
import type { SeedManagedIdentity, SeedTenant } from './seed-schema'
import type { TokenIssuer } from './tokens'

/** The audiences of "managed identity as a federated credential", per cloud, as Microsoft's workload identity federation documentation lists them. */
const TOKEN_EXCHANGE_AUDIENCES = ['api://AzureADTokenExchange', 'api://AzureADTokenExchangeUSGov', 'api://AzureADTokenExchangeChina']

export const MANAGED_IDENTITY_PATH = '/msi/token'

export interface ManagedIdentityRequestRecord {
  clientId: string | undefined
  resource: string
  status: number
  at: number
}

export interface ManagedIdentityDependencies {
  directory: Directory
  issuer: TokenIssuer
  /** The secret App Service puts in IDENTITY_HEADER; the endpoint refuses requests without it. */
  identityHeader: string
  recordManagedIdentityRequest: (entry: ManagedIdentityRequestRecord) => void
}

/**
 * An App Service style managed identity endpoint (api-version 2019-08-01): what msal-node's
 * ManagedIdentityApplication calls when IDENTITY_ENDPOINT and IDENTITY_HEADER are set. `client_id`
 * picks a user-assigned identity; without it the tenant's `systemAssigned` one answers.
 */
export function registerManagedIdentity (app: FastifyInstance, deps: ManagedIdentityDependencies): void {
  app.get<{ Querystring: Record<string, string | undefined> }>(MANAGED_IDENTITY_PATH, async (request, reply) => {
    const q = request.query
    const resource = q.resource ?? ''
    const clientId = q.client_id
    const answer = async (status: number, body: Record<string, unknown>): Promise<FastifyReply> => {
      deps.recordManagedIdentityRequest({ clientId, resource, status, at: Date.now() })
      return await reply.code(status).send(body)
    }
    // App Service's error shape: statusCode + message (msal-node reads `message` as the description).
    const refuse = async (status: number, error: string, message: string): Promise<FastifyReply> =>
      await answer(status, { statusCode: status, error, error_description: message, message, correlationId: request.correlationId })

    if (!sameSecret(String(request.headers['x-identity-header'] ?? ''), deps.identityHeader)) {
      return await refuse(401, 'unauthorized', 'The X-IDENTITY-HEADER header is missing or wrong.')
    }
    if (q['api-version'] !== '2019-08-01') return await refuse(400, 'invalid_request', `Unsupported api-version '${q['api-version'] ?? ''}'; this endpoint speaks 2019-08-01.`)
    if (resource === '') return await refuse(400, 'invalid_request', "The 'resource' query parameter is required.")

    const found = findIdentity(deps.directory, clientId, q.object_id)
    if (found === undefined) {
      return await refuse(400, 'invalid_request', clientId === undefined && q.object_id === undefined
        ? 'No system-assigned managed identity is enabled for this resource.'
        : `Unable to load the proper Managed Identity: no identity with client id '${clientId ?? q.object_id ?? ''}'.`)
    }
    const { tenant, identity } = found
    let audience: string
    if (TOKEN_EXCHANGE_AUDIENCES.includes(resource)) {
      audience = resource
    } else {
      const target = deps.directory.resource(tenant, resource)
      if (target === undefined) {
        return await refuse(400, 'invalid_resource', `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${tenant.name}.`)
      }
      audience = target.clientId
    }
    const lifetime = deps.issuer.lifetimeSeconds
    return await answer(200, {
      access_token: deps.issuer.managedIdentityToken(tenant, identity, audience),
      expires_on: Math.floor(Date.now() / 1000) + lifetime,
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId
    })
  })
}

function findIdentity (directory: Directory, clientId: string | undefined, objectId: string | undefined): { tenant: SeedTenant, identity: SeedManagedIdentity } | undefined {
  for (const tenant of directory.tenants) {
    const identity = (tenant.managedIdentities ?? []).find((mi) =>
      clientId !== undefined
        ? mi.clientId.toLowerCase() === clientId.toLowerCase()
        : objectId !== undefined ? mi.objectId.toLowerCase() === objectId.toLowerCase() : mi.systemAssigned === true)
    if (identity !== undefined) return { tenant, identity }
  }
  return undefined
}

function sameSecret (presented: string, known: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(presented), digest(known))
}
