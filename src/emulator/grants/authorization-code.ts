import { createHash } from 'node:crypto'
import { parseBasic } from '../client-auth'
import { EntraError, entraInstant, missingParameter } from '../entra-errors'
import { signInClaims } from '../signin/claims'
import type { CodeGrant } from '../signin/codes'
import { firstResource, tokenScopes } from '../signin/token-scopes'
import { delegatedResponse, type Grant } from './grant'
import { redeemingClient } from './redeeming-client'

/** Redeems a code from /authorize: once, within 10 minutes, by its client, with its redirect URI and PKCE verifier. */
export const authorizationCodeGrant: Grant = {
  required: ['code'],
  subject (params, signIn) {
    const found = signIn.codes.find(params.code ?? '')
    return found.outcome === 'unknown' ? undefined : { tenantId: found.grant.tenantId, user: { oid: found.grant.user.oid, username: found.grant.user.username } }
  },
  async issue (context) {
    const { directory, tenant, params, signIn } = context
    const code = params.code ?? ''
    const found = signIn.codes.find(code)
    switch (found.outcome) {
      case 'unknown':
        throw new EntraError('invalid_grant', 9002313, "Invalid request. Request is malformed or invalid. The provided value for the 'code' parameter is not valid.")
      case 'used':
        throw new EntraError('invalid_grant', 54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.')
      case 'expired':
        throw new EntraError('invalid_grant', 70008, `The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource. The code was issued on ${entraInstant(found.issuedAt)}.`)
      case 'ok':
        break
    }
    const grant = found.grant
    if (grant.tenantId !== tenant.id) {
      throw new EntraError('invalid_grant', 700005, 'Provided Authorization Code is intended to use against other tenant, thus rejected.')
    }
    const clientId = params.client_id ?? parseBasic(context.authorization)?.clientId ?? ''
    if (clientId === '') throw missingParameter('client_id')
    if (clientId.toLowerCase() !== grant.clientId.toLowerCase()) {
      throw new EntraError('invalid_grant', 70000, `The provided authorization code was issued to a different client than '${clientId}'.`)
    }
    // Mobile and desktop codes need no secret, web ones do.
    const client = await redeemingClient(context, { clientId: grant.clientId, spa: grant.redirectKind === 'spa' }, () => grant.redirectKind === 'publicClient')
    if ((params.redirect_uri ?? '') === '') throw missingParameter('redirect_uri')
    if (params.redirect_uri !== grant.redirectUri) {
      throw new EntraError('invalid_grant', 50011, `The redirect URI '${params.redirect_uri ?? ''}' specified in the request does not match the redirect URI used in the authorization request for the application '${grant.clientId}'.`)
    }
    checkVerifier(grant, params.code_verifier)

    const { scopes: asked, oidc } = tokenScopes(directory, tenant, params.scope ?? firstResource(grant.scope), client.app)
    const scopes = asked === undefined ? undefined : signIn.consents.permitted(tenant, client.app, asked, grant.user.oid)
    signIn.codes.consume(code)
    return delegatedResponse(context, client, scopes, grant.user, {
      oidc,
      ...(grant.nonce === undefined ? {} : { nonce: grant.nonce }),
      authTime: grant.authTime,
      spa: grant.redirectKind === 'spa',
      authContexts: signInClaims(grant.claims).authContexts
    })
  }
}

/** RFC 7636 §4.6. */
function checkVerifier (grant: CodeGrant, verifier: string | undefined): void {
  if (grant.codeChallenge === undefined) return
  if (verifier === undefined || verifier === '') throw missingParameter('code_verifier')
  const derived = grant.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier
  if (derived !== grant.codeChallenge) {
    throw new EntraError('invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.')
  }
}
