import type { Directory } from '../directory'
import { delegatedScopes, type ResourceScopes } from '../scopes'
import type { SeedApplication, SeedTenant } from '../seed-schema'

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email'])

export interface TokenScopes {
  /** Undefined when only OIDC scopes were asked: an id token (and refresh token), no access token. */
  scopes: ResourceScopes | undefined
  oidc: Set<string>
}

/** The token endpoint's scopes for the sign-in grants: one resource, or none at all. */
export function tokenScopes (directory: Directory, tenant: SeedTenant, raw: string, client: SeedApplication): TokenScopes {
  const values = raw.split(' ').filter((s) => s !== '')
  const oidc = new Set(values.map((s) => s.toLowerCase()).filter((s) => OIDC_SCOPES.has(s)))
  if (values.every((s) => OIDC_SCOPES.has(s.toLowerCase()))) return { scopes: undefined, oidc }
  return { scopes: delegatedScopes(directory, tenant, raw, client), oidc }
}

/** A code or device authorization may name several resources; redeemed without `scope`, the first one counts. */
export function firstResource (raw: string): string {
  const values = raw.split(' ').filter((s) => s !== '')
  const first = values.find((s) => !OIDC_SCOPES.has(s.toLowerCase()))
  const prefix = first === undefined ? undefined : first.slice(0, first.lastIndexOf('/') + 1)
  return values.filter((s) => OIDC_SCOPES.has(s.toLowerCase()) || (prefix !== undefined && s.startsWith(prefix))).join(' ')
}
