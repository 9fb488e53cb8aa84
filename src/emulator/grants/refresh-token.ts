import { parseBasic } from '../client-auth'
import { EntraError, entraInstant, missingParameter } from '../entra-errors'
import { nbfClaims } from '../conditional-access'
import { signInClaims } from '../signin/claims'
import { tokenScopes } from '../signin/token-scopes'
import { delegatedResponse, requestedClaims, type Grant } from './grant'
import { hasNoCredentials, redeemingClient } from './redeeming-client'

/**
 * Entra's multi-resource refresh token: redeemable for any resource the user consented to, by the
 * client it was issued to, until its session is revoked; every redemption hands out a successor.
 */
export const refreshTokenGrant: Grant = {
  required: ['refresh_token', 'scope'],
  subject (params, signIn) {
    const grant = signIn.refreshTokens.find(params.refresh_token ?? '')
    return grant === undefined ? undefined : { tenantId: grant.tenantId, user: { oid: grant.user.oid, username: grant.user.username } }
  },
  async issue (context) {
    const { directory, tenant, params, signIn, conditionalAccess } = context
    const grant = signIn.refreshTokens.find(params.refresh_token ?? '')
    if (grant === undefined || grant.tenantId !== tenant.id) {
      throw new EntraError('invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid. The refresh token is not one this tenant issued.')
    }
    const clientId = params.client_id ?? parseBasic(context.authorization)?.clientId ?? ''
    if (clientId === '') throw missingParameter('client_id')
    if (clientId.toLowerCase() !== grant.clientId.toLowerCase()) {
      throw new EntraError('invalid_grant', 70000, `Provided grant is invalid or malformed: the refresh token was issued to a different client than '${clientId}'.`)
    }
    // The platform is not recorded with a refresh token: a registration without credentials is public.
    const client = await redeemingClient(context, grant, hasNoCredentials)
    if (signIn.refreshTokens.expired(grant)) {
      const issued = entraInstant(grant.expiresAt - (grant.spa ? 24 * 3600 * 1000 : 0))
      throw grant.spa
        ? new EntraError('invalid_grant', 700084, `The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on ${issued}.`)
        : new EntraError('invalid_grant', 70008, 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.')
    }
    if (!signIn.accounts.enabled(tenant.id, grant.user.oid)) {
      throw new EntraError('invalid_grant', 50057, 'The user account is disabled.')
    }
    const revokedAt = conditionalAccess.revocationTime(tenant.id, grant.user.oid) ?? 0
    if (grant.issuedAt < revokedAt) {
      throw new EntraError('invalid_grant', 50173, `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${entraInstant(grant.issuedAt * 1000)}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${entraInstant(revokedAt * 1000)}'.`,
        400, { claims: nbfClaims(revokedAt) })
    }

    const { scopes: requested, oidc } = tokenScopes(directory, tenant, params.scope ?? '', client.app)
    const scopes = requested === undefined ? undefined : signIn.consents.permitted(tenant, client.app, requested, grant.user.oid)
    const amr = grant.user.amr ?? ['pwd']
    if (scopes !== undefined) {
      // A refresh may ask for a later nbf (CAE): that is what the new token gets, not a refusal.
      const { notBefore: _later, ...asked } = requestedClaims(params)
      conditionalAccess.checkOnBehalfOf(tenant, scopes.resource, { oid: grant.user.oid, username: grant.user.username, issuedAt: grant.issuedAt, amr }, asked)
    }
    if (signInClaims(params.claims).requiresMfa && !amr.includes('mfa')) {
      throw new EntraError('invalid_grant', 50076, `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${scopes?.resource.clientId ?? client.app.clientId}'.`,
        400, { suberror: 'basic_action', ...(params.claims === undefined ? {} : { claims: params.claims }) })
    }
    return delegatedResponse(context, client, scopes, grant.user, {
      oidc,
      spa: grant.spa,
      refreshing: grant,
      ...(grant.authTime === undefined ? {} : { authTime: grant.authTime })
    })
  }
}
