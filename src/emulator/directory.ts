import type { EmulatorSeed, SeedApplication, SeedTenant, SeedUser } from './seed-schema'

/** Segments that name no single tenant: metadata is served for them, tokens need the user's tenant. */
export const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations'])

/** Read-only lookups over the seed, all case-insensitive like Entra's. */
export class Directory {
  constructor (readonly seed: EmulatorSeed) {}

  get tenants (): readonly SeedTenant[] {
    return this.seed.tenants
  }

  /** A tenant is addressed by its GUID, its name, or its initial domain `<name>.onmicrosoft.com`, as in Entra. */
  tenant (segment: string): SeedTenant | undefined {
    const key = segment.toLowerCase()
    return this.seed.tenants.find((t) => {
      const name = t.name.toLowerCase()
      return t.id.toLowerCase() === key || name === key || `${name}.onmicrosoft.com` === key
    })
  }

  application (tenant: SeedTenant, clientId: string): SeedApplication | undefined {
    const key = clientId.toLowerCase()
    return tenant.applications.find((app) => app.clientId.toLowerCase() === key)
  }

  /** The app a scope prefix names: one of its identifier URIs (a trailing slash tolerated) or its client id. */
  resource (tenant: SeedTenant, identifier: string): SeedApplication | undefined {
    const key = identifier.replace(/\/$/, '').toLowerCase()
    return tenant.applications.find((app) =>
      app.clientId.toLowerCase() === key ||
      (app.identifierUris ?? []).some((uri) => uri.replace(/\/$/, '').toLowerCase() === key))
  }

  /** The delegated scopes an application exposes: `scopes` and `oauth2PermissionScopes` together. */
  exposedScopes (app: SeedApplication): string[] {
    return [...new Set([...(app.scopes ?? []), ...(app.oauth2PermissionScopes ?? []).map((s) => s.value)])]
  }

  /** Exposed scopes of consent type Admin: users cannot consent to them, an admin grant can. */
  adminScopes (app: SeedApplication): Set<string> {
    return new Set((app.oauth2PermissionScopes ?? []).filter((s) => s.type === 'Admin').map((s) => s.value.toLowerCase()))
  }

  /**
   * The client's statically configured scopes on `resource` (what `.default` means); undefined when
   * the client configures no permissions at all, so `.default` keeps meaning every exposed scope.
   */
  configuredScopes (tenant: SeedTenant, client: SeedApplication, resource: SeedApplication): string[] | undefined {
    if (client.requiredResourceAccess === undefined) return undefined
    return client.requiredResourceAccess.filter((r) => this.resource(tenant, r.resourceAppId) === resource).flatMap((r) => r.scopes)
  }

  user (tenant: SeedTenant, username: string): SeedUser | undefined {
    const key = username.toLowerCase()
    return tenant.users?.find((u) => u.username.toLowerCase() === key)
  }

  userByObjectId (tenant: SeedTenant, objectId: string): SeedUser | undefined {
    const key = objectId.toLowerCase()
    return tenant.users?.find((u) => u.objectId.toLowerCase() === key)
  }

  /** Where /organizations sends a username: the tenant that has the user. */
  tenantOfUser (username: string): SeedTenant | undefined {
    return this.seed.tenants.find((t) => this.user(t, username) !== undefined)
  }

  assignedRoles (tenant: SeedTenant, clientId: string, resource: SeedApplication): string[] {
    const principal = clientId.toLowerCase()
    const target = resource.clientId.toLowerCase()
    return (tenant.appRoleAssignments ?? [])
      .filter((a) => a.clientId.toLowerCase() === principal && a.resource.toLowerCase() === target)
      .map((a) => a.role)
  }
}
