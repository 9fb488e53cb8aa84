import { createDecoder } from 'fast-jwt'
import { authenticateClient } from '../client-auth'
import { EntraError, entraInstant } from '../entra-errors'
import type { Keyring } from '../keyring'
import { delegatedScopes } from '../scopes'
import type { SeedApplication } from '../seed-schema'
import type { UserIdentity } from '../tokens'
import { delegatedResponse, requestedClaims, type Grant } from './grant'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

const decodeComplete = createDecoder({ complete: true })
const NBF_SKEW_SECONDS = 300

/** On-Behalf-Of: the middle tier trades the user's token for one to a downstream API, same user. */
export const onBehalfOfGrant: Grant = {
  required: ['requested_token_use', 'assertion', 'scope'],
  async issue (context) {
    const { directory, tenant, params } = context
    if (params.requested_token_use !== 'on_behalf_of') {
      throw new EntraError('invalid_request', 90100, `The parameter 'requested_token_use' must be 'on_behalf_of' for the grant type '${JWT_BEARER}'.`)
    }
    const client = await authenticateClient(directory, tenant, params, context.authorization, true, context.assertions)
    const { user, issuedAt, authContexts } = await checkAssertion(context.keyring, params.assertion ?? '', client.app)
    const asked = delegatedScopes(directory, tenant, params.scope ?? '', client.app)
    // Revoked sessions, a requested nbf the assertion predates, MFA policies on the resource.
    context.conditionalAccess.checkOnBehalfOf(tenant, asked.resource, { ...user, issuedAt, amr: user.amr ?? [] }, requestedClaims(params))
    // The middle tier needs the user's (or an admin's) consent to the downstream scopes, as in Entra.
    const permitted = context.signIn.consents.permitted(tenant, client.app, asked, user.oid)
    // Like amr, the auth contexts the user satisfied carry through to the downstream token.
    return delegatedResponse(context, client, permitted, user, authContexts.length === 0 ? {} : { authContexts })
  }
}

/** Entra's checks, in Entra's order: a token it signed, still valid, addressed to the caller, of a user. */
async function checkAssertion (keyring: Keyring, assertion: string, caller: SeedApplication): Promise<{ user: UserIdentity, issuedAt: number, authContexts: string[] }> {
  let kid: string
  try {
    kid = String((decodeComplete(assertion) as { header: { kid?: unknown } }).header.kid)
  } catch {
    throw new EntraError('invalid_grant', 50027, 'JWT token is invalid or malformed.')
  }
  if (keyring.keyById(kid) === undefined) {
    throw new EntraError('invalid_grant', 50013, `Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${kid}']`)
  }
  let claims: Record<string, unknown>
  try {
    claims = await keyring.verifySignature(assertion)
  } catch {
    throw new EntraError('invalid_grant', 50013, `Assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '${kid}']`)
  }

  const nowMs = Date.now()
  const exp = typeof claims.exp === 'number' ? claims.exp : 0
  const nbf = typeof claims.nbf === 'number' ? claims.nbf : 0
  // Entra tolerates a few minutes of clock skew on nbf (tokens issued just after a revocation start a second ahead).
  if (exp * 1000 <= nowMs || (nbf - NBF_SKEW_SECONDS) * 1000 > nowMs) {
    throw new EntraError('invalid_grant', 500133, `Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: ${entraInstant(nowMs)}, expiry time of assertion ${entraInstant(exp * 1000)}.`)
  }

  const audiences = [caller.clientId, ...(caller.identifierUris ?? [])].map((a) => a.toLowerCase())
  if (typeof claims.aud !== 'string' || !audiences.includes(claims.aud.toLowerCase())) {
    const expected = caller.identifierUris?.[0] ?? caller.clientId
    throw new EntraError('invalid_grant', 500131, `Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '${String(claims.aud)}' and the expected audience is '${expected}' or one of the Application Uris of this application with App ID '${caller.clientId}'(${caller.displayName}). The downstream client must request a token for the expected audience (the application that made the OBO request) and this application should use that token as the assertion.`)
  }

  if (claims.idtyp === 'app' || typeof claims.scp !== 'string' || typeof claims.oid !== 'string') {
    throw new EntraError('unauthorized_client', 7000114, `Application '${caller.clientId}' is not allowed to make application on-behalf-of calls.`)
  }

  const username = [claims.preferred_username, claims.upn, claims.unique_name].find((v): v is string => typeof v === 'string') ?? ''
  const amr = Array.isArray(claims.amr) ? claims.amr.filter((m): m is string => typeof m === 'string') : undefined
  const issuedAt = typeof claims.iat === 'number' ? claims.iat : nbf
  return {
    user: { oid: claims.oid, name: typeof claims.name === 'string' ? claims.name : '', username, ...(amr === undefined ? {} : { amr }) },
    issuedAt,
    authContexts: Array.isArray(claims.acrs) ? claims.acrs.filter((c): c is string => typeof c === 'string') : []
  }
}
