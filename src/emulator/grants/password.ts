import { authenticateClient } from '../client-auth'
import { EntraError } from '../entra-errors'
import { delegatedScopes } from '../scopes'
import { delegatedResponse, requestedClaims, type Grant } from './grant'

/** Resource owner password credentials: how tests and the dev stack sign a seeded user in without a browser. */
export const passwordGrant: Grant = {
  required: ['username', 'password', 'scope'],
  async issue (context) {
    const { directory, tenant, params } = context
    const client = await authenticateClient(directory, tenant, params, context.authorization, false, context.assertions)
    const scopes = delegatedScopes(directory, tenant, params.scope ?? '', client.app)
    const user = directory.user(tenant, params.username ?? '')
    if (user === undefined) {
      throw new EntraError('invalid_grant', 50034, `The user account ${params.username ?? ''} does not exist in the ${tenant.name} directory. To sign into this application, the account must be added to the directory.`)
    }
    if (user.password !== params.password) {
      throw new EntraError('invalid_grant', 50126, 'Error validating credentials due to invalid username or password.')
    }
    // A sign-in whose claims request names an MFA policy's id is taken as having done that MFA.
    const amr = context.conditionalAccess.completesMfa(requestedClaims(params)) ? ['pwd', 'mfa'] : ['pwd']
    return delegatedResponse(context, client, scopes, { oid: user.objectId, name: user.name, username: user.username, amr })
  }
}
