import { authenticateClient } from '../client-auth'
import { applicationScope } from '../scopes'
import { requestedClaims, type Grant } from './grant'

/** App-only tokens: `roles` are the caller's app role assignments on the resource, no user claims. */
export const clientCredentialsGrant: Grant = {
  required: ['scope'],
  async issue (context) {
    const { directory, issuer, tenant, params } = context
    const client = await authenticateClient(directory, tenant, params, context.authorization, true, context.assertions)
    const scopes = applicationScope(directory, tenant, client.app.clientId, params.scope ?? '')
    const { clientCapabilities } = requestedClaims(params)
    // Entra's client credentials answer has no `scope` (see test/fixtures/entra/token-success-client-credentials.json).
    return {
      token_type: 'Bearer',
      expires_in: issuer.lifetimeSeconds,
      ext_expires_in: issuer.lifetimeSeconds,
      access_token: issuer.accessToken({
        tenant,
        client: client.app,
        clientAuthenticated: true,
        scopes,
        ...(clientCapabilities === undefined ? {} : { clientCapabilities })
      })
    }
  }
}
