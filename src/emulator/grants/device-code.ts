import { authenticateClient, parseBasic } from '../client-auth'
import { EntraError, missingParameter } from '../entra-errors'
import { signInClaims } from '../signin/claims'
import { DEVICE_CODE_INTERVAL_SECONDS } from '../signin/device-codes'
import { firstResource, tokenScopes } from '../signin/token-scopes'
import { delegatedResponse, type Grant } from './grant'

/** Entra takes msal-node's short spelling as well as RFC 8628's. */
export const DEVICE_CODE_GRANT_TYPES = ['device_code', 'urn:ietf:params:oauth:grant-type:device_code'] as const

/** Polling for a device code: pending until the user signed in on the device page, then the tokens, once. */
export const deviceCodeGrant: Grant = {
  required: ['device_code'],
  subject (params, signIn) {
    const authorization = signIn.deviceCodes.find(params.device_code ?? '')
    const user = authorization?.signedIn?.user
    return authorization === undefined ? undefined : { tenantId: authorization.tenantId, ...(user === undefined ? {} : { user: { oid: user.oid, username: user.username } }) }
  },
  async issue (context) {
    const { directory, tenant, params, signIn } = context
    const poll = signIn.deviceCodes.poll(params.device_code ?? '')
    switch (poll.outcome) {
      case 'unknown':
        throw new EntraError('invalid_grant', 70000, "Provided grant is invalid or malformed: the 'device_code' is not one this emulator issued.")
      case 'pending':
        throw new EntraError('authorization_pending', 70016, 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.')
      case 'slow_down':
        throw new EntraError('slow_down', 70016, `OAuth 2.0 device flow error. Polling too fast: wait at least ${DEVICE_CODE_INTERVAL_SECONDS} seconds between requests.`)
      case 'expired':
        throw new EntraError('expired_token', 70019, 'Verification code expired.')
      case 'declined':
        throw new EntraError('authorization_declined', 65004, 'The end user denied the authorization request.')
      case 'redeemed':
        throw new EntraError('invalid_grant', 54005, 'The device code was already redeemed, please start a new device code flow or use an existing refresh token.')
      case 'approved':
        break
    }
    const { authorization } = poll
    const clientId = params.client_id ?? parseBasic(context.authorization)?.clientId ?? ''
    if (clientId === '') throw missingParameter('client_id')
    if (clientId.toLowerCase() !== authorization.clientId.toLowerCase() || tenant.id !== authorization.tenantId) {
      throw new EntraError('invalid_grant', 70000, `Provided grant is invalid or malformed: the device code was issued to another client or tenant than '${clientId}'.`)
    }
    const client = await authenticateClient(directory, tenant, params, context.authorization, false, context.assertions)
    const user = authorization.signedIn?.user
    if (user === undefined) throw new EntraError('authorization_pending', 70016, 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.')
    const { scopes: asked, oidc } = tokenScopes(directory, tenant, params.scope ?? firstResource(authorization.scope), client.app)
    const scopes = asked === undefined ? undefined : signIn.consents.permitted(tenant, client.app, asked, user.oid)
    return delegatedResponse(context, client, scopes, user, {
      oidc,
      ...(authorization.signedIn === undefined ? {} : { authTime: authorization.signedIn.authTime }),
      authContexts: signInClaims(authorization.claims).authContexts
    })
  }
}
