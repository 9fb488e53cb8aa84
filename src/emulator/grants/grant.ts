import type { TokenParams } from '../client-auth'
import type { Directory } from '../directory'
import { EntraError } from '../entra-errors'
import type { Keyring } from '../keyring'
import type { ResourceScopes } from '../scopes'
import type { SeedApplication, SeedTenant } from '../seed'
import { clientInfo, opaqueToken, type TokenIssuer, type UserIdentity } from '../tokens'

export interface GrantContext {
  directory: Directory
  keyring: Keyring
  issuer: TokenIssuer
  tenant: SeedTenant
  params: TokenParams
  /** The Authorization header, for HTTP Basic client authentication. */
  authorization: string | undefined
}

export type TokenResponse = Record<string, string | number>

export interface Grant {
  /** Parameters Entra insists on (AADSTS900144 names the first one missing); client_id is checked by client authentication. */
  required: readonly string[]
  issue (context: GrantContext): TokenResponse | Promise<TokenResponse>
}

/**
 * msal sends client capabilities as `claims={"access_token":{"xms_cc":{"values":["cp1"]}}}`; the
 * token then carries `xms_cc` with those values as sent (compare them case-insensitively).
 */
export function requestedClientCapabilities (params: TokenParams): unknown[] | undefined {
  if (params.claims === undefined) return undefined
  let claims: unknown
  try {
    claims = JSON.parse(params.claims)
  } catch {
    throw new EntraError('invalid_request', 90100, "The parameter 'claims' isn't valid JSON.")
  }
  const values = (claims as { access_token?: { xms_cc?: { values?: unknown } } } | null)?.access_token?.xms_cc?.values
  return Array.isArray(values) ? values : undefined
}

/** The answer shared by the delegated grants: id_token and refresh_token only when their OIDC scopes were asked, like Entra. */
export function delegatedResponse (
  context: GrantContext,
  client: { app: SeedApplication, confidential: boolean },
  scopes: ResourceScopes,
  user: UserIdentity
): TokenResponse {
  const { issuer, tenant, params } = context
  const capabilities = requestedClientCapabilities(params)
  const body: TokenResponse = {
    token_type: 'Bearer',
    scope: scopes.granted.join(' '),
    expires_in: issuer.lifetimeSeconds,
    ext_expires_in: issuer.lifetimeSeconds,
    access_token: issuer.accessToken({
      tenant,
      client: client.app,
      clientAuthenticated: client.confidential,
      scopes,
      user,
      ...(capabilities === undefined ? {} : { clientCapabilities: capabilities })
    })
  }
  if (scopes.oidc.has('offline_access')) body.refresh_token = opaqueToken()
  if (scopes.oidc.has('openid')) body.id_token = issuer.idToken(tenant, client.app, user)
  if (params.client_info === '1') body.client_info = clientInfo(user.oid, tenant.id)
  return body
}
