import { authenticateClient, parseBasic, type AuthenticatedClient } from '../client-auth'
import { EntraError } from '../entra-errors'
import type { SeedApplication } from '../seed-schema'
import type { GrantContext } from './grant'

/** What a code or refresh token records about how it was issued. */
export interface Redeemable {
  clientId: string
  /** Issued through a spa redirect URI: redeemable only cross-origin, without a secret. */
  spa: boolean
}

/**
 * The client redeeming a code or refresh token. Entra ties redemption to the platform the grant
 * came through: spa grants only cross-origin and unauthenticated, the others never cross-origin,
 * authenticated whenever credentials are presented. When a client presenting none may still redeem
 * as a public client differs between the grants, hence `publicWithoutCredentials`.
 */
export async function redeemingClient (
  context: GrantContext,
  grant: Redeemable,
  publicWithoutCredentials: (app: SeedApplication) => boolean
): Promise<AuthenticatedClient> {
  const { directory, tenant, params } = context
  const app = directory.application(tenant, grant.clientId)
  if (app === undefined) throw new EntraError('unauthorized_client', 700016, `Application with identifier '${grant.clientId}' was not found in the directory '${tenant.name}'.`)
  if (grant.spa) {
    if (context.origin === undefined) {
      throw new EntraError('invalid_request', 9002327, "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.")
    }
    return { app, confidential: false }
  }
  if (context.origin !== undefined) {
    throw new EntraError('invalid_request', 9002326, `Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '${context.origin}'.`)
  }
  const presented = params.client_secret !== undefined || params.client_assertion !== undefined || parseBasic(context.authorization) !== undefined
  if (!presented && publicWithoutCredentials(app)) return { app, confidential: false }
  return await authenticateClient(directory, tenant, params, context.authorization, false, context.assertions)
}

/** A registration with no secret, certificate or federated credential can only be a public client. */
export function hasNoCredentials (app: SeedApplication): boolean {
  return (app.secrets ?? []).length === 0 && (app.certificates ?? []).length === 0 && (app.federatedCredentials ?? []).length === 0
}
