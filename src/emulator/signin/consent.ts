import { randomUUID } from 'node:crypto'
import type { Directory } from '../directory'
import { EntraError } from '../entra-errors'
import type { ResourceScopes } from '../scopes'
import type { ConsentGrant, SeedApplication, SeedTenant } from '../seed-schema'

interface RecordedGrant { id: string, tenantId: string, grant: ConsentGrant }

/**
 * Delegated permission grants: the tenant's seeded `consents` plus those recorded at run time (the
 * consent page, the handle, the control API). A tenant without `enforceConsent` has consented to
 * everything, as the emulator always behaved.
 */
export class ConsentModel {
  private readonly recorded: RecordedGrant[] = []

  constructor (private readonly directory: Directory) {}

  add (tenant: SeedTenant, grant: ConsentGrant): string {
    const id = randomUUID()
    this.recorded.push({ id, tenantId: tenant.id, grant: { ...grant, scopes: [...grant.scopes] } })
    return id
  }

  remove (id: string): boolean {
    const at = this.recorded.findIndex((r) => r.id === id)
    if (at < 0) return false
    this.recorded.splice(at, 1)
    return true
  }

  /**
   * The scope names of `scopes` nobody consented to for this client and user (empty: all granted).
   * `.default` asks for what was consented to the resource: refused only when nothing was.
   */
  missing (tenant: SeedTenant, clientId: string, scopes: ResourceScopes, userObjectId: string): string[] {
    if (tenant.enforceConsent !== true) return []
    const granted = this.granted(tenant, clientId, scopes.resource, userObjectId)
    if (scopes.granted.some((s) => s.endsWith('/.default'))) return granted.size > 0 ? [] : [...scopes.names]
    return scopes.names.filter((name) => !granted.has(name.toLowerCase()))
  }

  granted (tenant: SeedTenant, clientId: string, resource: SeedApplication, userObjectId: string): Set<string> {
    const grants = [...(tenant.consents ?? []), ...this.recorded.filter((r) => r.tenantId === tenant.id).map((r) => r.grant)]
    const names = new Set<string>()
    for (const grant of grants) {
      if (grant.clientId.toLowerCase() !== clientId.toLowerCase()) continue
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
