import { randomUUID } from 'node:crypto'
import type { Directory } from '../directory'
import { EntraError } from '../entra-errors'
import { delegatedScopes, type ResourceScopes } from '../scopes'
import type { ConsentGrant, SeedApplication, SeedTenant } from '../seed-schema'

interface RecordedGrant { id: string, tenantId: string, grant: ConsentGrant }

/** One consent a sign-in asks for: a client's scopes on one resource. */
export interface ConsentRequest {
  client: SeedApplication
  scopes: ResourceScopes
  /** Of `scopes.names`, those nobody consented to yet. */
  missing: string[]
}

/**
 * Delegated permission grants: the tenant's seeded `consents` plus those recorded at run time (the
 * consent page, the handle, the control API), all removable. A tenant without `enforceConsent` has
 * consented to everything, as the emulator always behaved.
 */
export class ConsentModel {
  private grants: RecordedGrant[] = []

  constructor (private readonly directory: Directory) {
    for (const tenant of directory.tenants) for (const grant of tenant.consents ?? []) this.add(tenant, grant)
  }

  add (tenant: SeedTenant, grant: ConsentGrant): string {
    const id = randomUUID()
    this.grants.push({ id, tenantId: tenant.id, grant: { ...grant, scopes: [...grant.scopes] } })
    return id
  }

  remove (id: string): boolean {
    const at = this.grants.findIndex((r) => r.id === id)
    if (at < 0) return false
    this.grants.splice(at, 1)
    return true
  }

  /** Every grant goes, the seed's included. */
  clear (): void {
    this.grants = []
  }

  /** The scope names of `scopes` nobody consented to for this client and user (empty: all granted). */
  missing (tenant: SeedTenant, clientId: string, scopes: ResourceScopes, userObjectId: string): string[] {
    if (tenant.enforceConsent !== true) return []
    const granted = this.granted(tenant, clientId, scopes.resource, userObjectId)
    return scopes.names.filter((name) => !granted.has(name.toLowerCase()))
  }

  /**
   * The token endpoint's consent check (code, refresh, device code, OBO): named scopes must all be
   * granted; `.default` gets what was granted of it and is refused only when nothing was, as in Entra.
   */
  permitted (tenant: SeedTenant, client: SeedApplication, scopes: ResourceScopes, userObjectId: string): ResourceScopes {
    const missing = this.missing(tenant, client.clientId, scopes, userObjectId)
    if (missing.length === 0) return scopes
    const isDefault = scopes.granted.some((s) => s.endsWith('/.default'))
    if (!isDefault || missing.length === scopes.names.length) throw consentRequiredError(client.clientId, client.displayName)
    const names = scopes.names.filter((name) => !missing.includes(name))
    return { ...scopes, names, granted: [...names.map((name) => `${scopes.identifier}/${name}`), `${scopes.identifier}/.default`] }
  }

  /**
   * What a sign-in of `client` for `resources` asks consent for: the client's own scopes and, for
   * every resource naming the client in `knownClientApplications`, that resource's own
   * `requiredResourceAccess` (Entra's combined consent, so the middle tier's OBO needs no prompt).
   */
  requests (tenant: SeedTenant, client: SeedApplication, resources: ResourceScopes[], userObjectId: string): ConsentRequest[] {
    const request = (app: SeedApplication, scopes: ResourceScopes): ConsentRequest =>
      ({ client: app, scopes, missing: this.missing(tenant, app.clientId, scopes, userObjectId) })
    const own = resources.map((scopes) => request(client, scopes))
    const combined = resources
      .map((r) => r.resource)
      .filter((api, i, all) => all.indexOf(api) === i && (api.knownClientApplications ?? []).some((id) => id.toLowerCase() === client.clientId.toLowerCase()))
      .flatMap((api) => (api.requiredResourceAccess ?? []).filter((access) => access.scopes.length > 0).map((access) =>
        request(api, delegatedScopes(this.directory, tenant, access.scopes.map((s) => `${access.resourceAppId}/${s}`).join(' '), api))))
    return [...own, ...combined]
  }

  /** The missing scopes only an admin can grant (consent type Admin), fully qualified. */
  adminOnly (requests: ConsentRequest[]): string[] {
    return requests.flatMap((r) => {
      const admin = this.directory.adminScopes(r.scopes.resource)
      return r.missing.filter((name) => admin.has(name.toLowerCase())).map((name) => `${r.scopes.identifier}/${name}`)
    })
  }

  private granted (tenant: SeedTenant, clientId: string, resource: SeedApplication, userObjectId: string): Set<string> {
    const names = new Set<string>()
    for (const { tenantId, grant } of this.grants) {
      if (tenantId !== tenant.id || grant.clientId.toLowerCase() !== clientId.toLowerCase()) continue
      if (grant.userObjectId !== undefined && grant.userObjectId.toLowerCase() !== userObjectId.toLowerCase()) continue
      if (this.directory.resource(tenant, grant.resource) !== resource) continue
      for (const scope of grant.scopes) names.add(scope.toLowerCase())
    }
    return names
  }
}

/** Entra's refusal when a token is asked for scopes nobody consented to (OBO, refresh, code redemption). */
export function consentRequiredError (clientId: string, clientName: string): EntraError {
  return new EntraError('invalid_grant', 65001, `The user or administrator has not consented to use the application with ID '${clientId}' named '${clientName}'. Send an interactive authorization request for this user and resource.`, 400, { suberror: 'consent_required' })
}
