import type { Directory } from './directory'
import { EntraError } from './entra-errors'
import type { SeedTenant } from './seed-schema'

/**
 * Entra (since 2026) accepts an RFC 8707 `resource` only when it is exactly the identifier URI of
 * the application whose scopes are asked for, and answers AADSTS9010010 otherwise: what MCP
 * clients that send their server's URL as `resource` run into. For /authorize and the token endpoint.
 */
export function checkResourceIndicator (directory: Directory, tenant: SeedTenant, params: { resource?: string | undefined, scope?: string | undefined }): void {
  const resource = params.resource
  if (resource === undefined || resource === '' || params.scope === undefined) return
  const qualified = params.scope.split(' ').find((s) => s.lastIndexOf('/') > 0)
  const app = qualified === undefined ? undefined : directory.resource(tenant, qualified.slice(0, qualified.lastIndexOf('/')))
  if (app !== undefined && (app.identifierUris ?? []).includes(resource)) return
  throw new EntraError('invalid_target', 9010010, "The resource parameter provided in the request doesn't match with the requested scopes.")
}
