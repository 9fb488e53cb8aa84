import type { Directory } from './directory'
import { EntraError, invalidScope } from './entra-errors'
import type { SeedApplication, SeedTenant } from './seed-schema'

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email'])

export interface ResourceScopes {
  resource: SeedApplication
  /** The resource as the request named it (identifier URI or client id): v1 tokens use it as `aud`. */
  identifier: string
  /** Scope names for delegated grants, app role names for client credentials. */
  names: string[]
  /** Fully qualified scopes as the response's `scope` reports them. */
  granted: string[]
  /** The OIDC scopes that came with the request (they decide id_token and refresh_token). */
  oidc: Set<string>
}

interface ParsedScope { value: string, identifier: string, name: string }

/** Splits `scope` like Entra: OIDC scopes aside, everything else `<resource>/<name>` for one resource. */
function parse (directory: Directory, tenant: SeedTenant, raw: string): { oidc: Set<string>, resource: SeedApplication, identifier: string, items: ParsedScope[] } {
  const oidc = new Set<string>()
  const items: ParsedScope[] = []
  for (const value of raw.split(' ').filter((s) => s !== '')) {
    if (OIDC_SCOPES.has(value.toLowerCase())) {
      oidc.add(value.toLowerCase())
      continue
    }
    const slash = value.lastIndexOf('/')
    if (slash <= 0) throw invalidScope(value, 'This emulator has no default resource (Microsoft Graph); qualify the scope with the resource identifier.')
    items.push({ value, identifier: value.slice(0, slash), name: value.slice(slash + 1) })
  }
  const first = items[0]
  if (first === undefined) throw invalidScope(raw, 'Request a scope of a resource registered in this tenant.')
  const resource = directory.resource(tenant, first.identifier)
  if (resource === undefined) throw invalidScope(first.value, `No application in tenant '${tenant.name}' has the identifier '${first.identifier}'.`)
  if (items.some((item) => directory.resource(tenant, item.identifier) !== resource)) {
    throw new EntraError('invalid_scope', 700022, `The provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${raw} is not valid.`)
  }
  return { oidc, resource, identifier: first.identifier, items }
}

/**
 * Delegated grants (password, OBO, sign-in): named scopes must be exposed. `.default` means the
 * client's statically configured permissions (`requiredResourceAccess`) on the resource, or every
 * exposed scope for a client (or a request without one) that configures none.
 */
export function delegatedScopes (directory: Directory, tenant: SeedTenant, raw: string, client?: SeedApplication): ResourceScopes {
  const { oidc, resource, identifier, items } = parse(directory, tenant, raw)
  const exposed = directory.exposedScopes(resource)
  if (items.some((item) => item.name === '.default')) {
    if (items.length > 1) throw invalidScope(raw, "'.default' cannot be combined with other scopes of the same resource.")
    const configured = client === undefined ? undefined : directory.configuredScopes(tenant, client, resource)
    if (client !== undefined && configured?.length === 0) throw notRequiredResource(client, identifier, resource)
    const names = configured === undefined ? exposed : exposed.filter((name) => configured.some((c) => c.toLowerCase() === name.toLowerCase()))
    return { resource, identifier, names, granted: [...names.map((name) => `${identifier}/${name}`), `${identifier}/.default`], oidc }
  }
  const names: string[] = []
  for (const item of items) {
    const name = exposed.find((s) => s.toLowerCase() === item.name.toLowerCase())
    if (name === undefined) throw invalidScope(item.value, `${resource.displayName} does not expose a scope named '${item.name}'.`)
    if (!names.includes(name)) names.push(name)
  }
  return { resource, identifier, names, granted: names.map((name) => `${identifier}/${name}`), oidc }
}

function notRequiredResource (client: SeedApplication, identifier: string, resource: SeedApplication): EntraError {
  const registered = (client.requiredResourceAccess ?? []).map((r) => r.resourceAppId).join(', ')
  return new EntraError('invalid_client', 650057, `Invalid resource. The client has requested access to a resource which isn't listed in the requested permissions in the client's application registration. Client app ID: ${client.clientId}(${client.displayName}). Resource value from request: ${identifier}. Resource app ID: ${resource.clientId}. List of valid resources from app registration: ${registered}.`)
}

/** Client credentials: exactly `<resource>/.default`; the roles come from app role assignments. */
export function applicationScope (directory: Directory, tenant: SeedTenant, clientId: string, raw: string): ResourceScopes {
  const { oidc, resource, identifier, items } = parse(directory, tenant, raw)
  if (items.length !== 1 || items[0]?.name !== '.default') {
    throw new EntraError('invalid_scope', 1002012, `The provided value for scope ${raw} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`)
  }
  return { resource, identifier, names: directory.assignedRoles(tenant, clientId, resource), granted: [`${identifier}/.default`], oidc }
}
