import { InvalidTokenError } from '../errors'
import type { IssuerTemplates } from './openid-metadata'
import { isGuid } from './tenant'

/**
 * Decides from a token's own `iss` and `tid` whether its issuer is one we trust, before any key is
 * fetched: the JWKS location is then built from our configured instance and that tenant, never from
 * what the token names.
 */
export class IssuerPolicy {
  private readonly allowed: ReadonlySet<string>
  private readonly issuersOf = new Map<string, readonly string[]>()

  constructor (private readonly templates: IssuerTemplates, allowedTenants: readonly string[]) {
    this.allowed = new Set(allowedTenants.map((t) => t.toLowerCase()))
  }

  /** Returns the token's tenant id (lower case) or throws InvalidTokenError. */
  tenantOf (iss: unknown, tid: unknown): string {
    if (!isGuid(tid)) throw new InvalidTokenError('The token has no valid tid claim', 'tenant')
    const tenant = tid.toLowerCase()
    if (!this.allowed.has(tenant)) throw new InvalidTokenError(`Tenant ${tenant} is not allowed to call this API`, 'tenant')
    if (typeof iss !== 'string' || !this.expectedIssuers(tid).includes(iss)) {
      throw new InvalidTokenError('The token issuer is not trusted', 'issuer')
    }
    if (!iss.toLowerCase().includes(`/${tenant}/`)) throw new InvalidTokenError('The token issuer does not match its tid', 'issuer')
    return tenant
  }

  expectedIssuers (tid: string): readonly string[] {
    // Remembered for the allowed tenants as they spell themselves, so the map stays as small as the allow-list.
    const known = this.issuersOf.get(tid)
    if (known !== undefined) return known
    const issuers = [this.templates.v2, this.templates.v1].map((t) => t.replace('{tenantid}', tid))
    if (this.allowed.has(tid)) this.issuersOf.set(tid, issuers)
    return issuers
  }
}
