import type { AssertionCheck, TokenParams } from '../client-auth'
import type { ConditionalAccess } from '../conditional-access'
import type { Directory } from '../directory'
import { EntraError } from '../entra-errors'
import type { Keyring } from '../keyring'
import type { ResourceScopes } from '../scopes'
import type { SeedApplication, SeedTenant } from '../seed-schema'
import type { RefreshGrant } from '../signin/refresh-tokens'
import type { SignInState } from '../signin/state'
import { clientInfo, type TokenIssuer, type UserIdentity } from '../tokens'

export interface GrantContext {
  directory: Directory
  keyring: Keyring
  issuer: TokenIssuer
  tenant: SeedTenant
  params: TokenParams
  /** The Authorization header, for HTTP Basic client authentication. */
  authorization: string | undefined
  /** Certificate and federated client assertions. */
  assertions: AssertionCheck
  /** Session revocations and MFA policies (the user-dependent refusals). */
  conditionalAccess: ConditionalAccess
  /** Codes, refresh tokens, device codes and consents of interactive sign-in. */
  signIn: SignInState
  /** The request's Origin header: spa codes and refresh tokens are redeemable only cross-origin. */
  origin: string | undefined
}

export type TokenResponse = Record<string, string | number>

export interface Grant {
  /** Parameters Entra insists on (AADSTS900144 names the first one missing); client_id is checked by client authentication. */
  required: readonly string[]
  issue (context: GrantContext): TokenResponse | Promise<TokenResponse>
  /**
   * The tenant and user a request is about when the grant itself records them (a code, a refresh
   * token, a device code): /common and /organizations resolve to that tenant.
   */
  subject?: (params: TokenParams, signIn: SignInState) => { tenantId: string, user?: { oid: string, username: string } } | undefined
}

/** What a sign-in adds to a delegated answer beyond the scopes and the user. */
export interface SignInDetails {
  /** The OIDC scopes asked for when no resource was (the answer then has no access token). */
  oidc?: Set<string>
  nonce?: string
  /** Seconds: the id token's auth_time. */
  authTime?: number
  /** Through a spa redirect URI: the refresh token's life is fixed at 24 hours. */
  spa?: boolean
  /** Auth contexts the /authorize claims request asked for (acrs). */
  authContexts?: string[]
  /** The refresh token being redeemed: its successor continues its chain. */
  refreshing?: RefreshGrant
}

/** What a `claims` request parameter asks to have in the access token. */
export interface RequestedClaims {
  /** `access_token.xms_cc.values`, as sent: msal sends client capabilities this way. */
  clientCapabilities?: unknown[]
  /** `access_token.acrs`: auth contexts a step-up asks for; the seeded user always satisfies them. */
  authContexts?: string[]
  /** `access_token.nbf.value` (seconds): the token must not be issued before it (CAE, AADSTS50173). */
  notBefore?: number
  /** `access_token.polids` / `capolids` values: the conditional-access policies a sign-in is to satisfy. */
  policyIds?: string[]
}

interface ClaimRequest { essential?: unknown, value?: unknown, values?: unknown }

/** A claim request's `value` and `values`, the strings among them. */
function claimValues (request: ClaimRequest | undefined): string[] {
  return [request?.value, ...(Array.isArray(request?.values) ? request.values : [])].filter((v): v is string => typeof v === 'string')
}

export function requestedClaims (params: TokenParams): RequestedClaims {
  if (params.claims === undefined) return {}
  let claims: unknown
  try {
    claims = JSON.parse(params.claims)
  } catch {
    throw new EntraError('invalid_request', 90100, "The parameter 'claims' isn't valid JSON.")
  }
  const accessToken = (claims as { access_token?: Record<string, ClaimRequest | undefined> } | null)?.access_token
  const values = accessToken?.xms_cc?.values
  const contexts = claimValues(accessToken?.acrs)
  // Entra (and Graph's CAE challenge) send nbf as a string of seconds; a number is taken too.
  const nbf = accessToken?.nbf?.value
  const notBefore = typeof nbf === 'number' ? nbf : typeof nbf === 'string' && /^\d+$/.test(nbf) ? Number(nbf) : undefined
  const policyIds = [...claimValues(accessToken?.polids), ...claimValues(accessToken?.capolids)]
  return {
    ...(Array.isArray(values) ? { clientCapabilities: values } : {}),
    ...(contexts.length > 0 ? { authContexts: contexts } : {}),
    ...(notBefore === undefined || !Number.isSafeInteger(notBefore) ? {} : { notBefore }),
    ...(policyIds.length > 0 ? { policyIds } : {})
  }
}

/**
 * The answer shared by the delegated grants: id_token and refresh_token only when their OIDC scopes
 * were asked, like Entra. The refresh token is redeemable (grants/refresh-token.ts).
 */
export function delegatedResponse (
  context: GrantContext,
  client: { app: SeedApplication, confidential: boolean },
  scopes: ResourceScopes | undefined,
  user: UserIdentity,
  details: SignInDetails = {}
): TokenResponse {
  const { issuer, tenant, params } = context
  const { clientCapabilities, authContexts: asked, ...session } = requestedClaims(params)
  const authContexts = [...new Set([...(details.authContexts ?? []), ...(asked ?? [])])]
  const issuedAt = context.conditionalAccess.issuedAt(tenant.id, user.oid, session)
  const oidc = scopes?.oidc ?? details.oidc ?? new Set<string>()
  const body: TokenResponse = {
    token_type: 'Bearer',
    scope: scopes === undefined ? [...oidc].join(' ') : scopes.granted.join(' '),
    expires_in: issuer.lifetimeSeconds,
    ext_expires_in: issuer.lifetimeSeconds
  }
  if (scopes !== undefined) {
    body.access_token = issuer.accessToken({
      tenant,
      client: client.app,
      clientAuthenticated: client.confidential,
      scopes,
      user,
      issuedAt,
      ...(clientCapabilities === undefined ? {} : { clientCapabilities }),
      ...(authContexts.length === 0 ? {} : { authContexts })
    })
  }
  if (oidc.has('offline_access')) {
    const refreshTokens = context.signIn.refreshTokens
    const token = details.refreshing === undefined
      ? refreshTokens.issue({ tenantId: tenant.id, clientId: client.app.clientId, user, issuedAt, spa: details.spa === true, ...(details.authTime === undefined ? {} : { authTime: details.authTime }) })
      : refreshTokens.rotate(details.refreshing)
    body.refresh_token = token
    const grant = refreshTokens.find(token)
    if (grant?.spa === true) body.refresh_token_expires_in = Math.max(0, Math.floor((grant.expiresAt - context.signIn.clock()) / 1000))
  }
  if (oidc.has('openid')) {
    body.id_token = issuer.idToken(tenant, client.app, user, {
      ...(details.nonce === undefined ? {} : { nonce: details.nonce }),
      ...(details.authTime === undefined ? {} : { auth_time: details.authTime })
    })
  }
  if (params.client_info === '1') body.client_info = clientInfo(user.oid, tenant.id)
  return body
}
