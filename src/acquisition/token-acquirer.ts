import type { AuthenticationResult } from '@azure/msal-node'
import { TokenAcquisitionError } from '../errors'
import type { AppPrincipal, DelegatedPrincipal } from '../validation/principal'
import type { ConfidentialClients } from './confidential-clients'
import { mapEntraError } from './entra-error-map'

export interface DownstreamToken {
  accessToken: string
  expiresOn: Date | null
}

/** Gets the token a route forwards with: OBO for users, client credentials for workloads. */
export class TokenAcquirer {
  constructor (private readonly clients: ConfidentialClients, private readonly homeTenantId: string) {}

  async forUser (principal: DelegatedPrincipal, assertion: string, scopes: readonly string[]): Promise<DownstreamToken> {
    const app = this.clients.forTenant(principal.tenantId, principal.clientCapabilities.includes('cp1'))
    return await settle(app.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [...scopes] }), scopes)
  }

  async forApp (principal: AppPrincipal, scopes: readonly string[]): Promise<DownstreamToken> {
    // A multi-tenant gateway has no single home tenant; the workload's own tenant is the one to ask.
    const tenant = this.homeTenantId === 'organizations' ? principal.tenantId : this.homeTenantId
    return await settle(this.clients.forTenant(tenant).acquireTokenByClientCredential({ scopes: [...scopes] }), scopes)
  }
}

async function settle (pending: Promise<AuthenticationResult | null>, scopes: readonly string[]): Promise<DownstreamToken> {
  let result: AuthenticationResult | null
  try {
    result = await pending
  } catch (err) {
    throw mapEntraError(err, scopes)
  }
  if (result === null || !result.accessToken) throw new TokenAcquisitionError('Entra returned no access token')
  return { accessToken: result.accessToken, expiresOn: result.expiresOn }
}
