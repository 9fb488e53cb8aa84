import { createHash, timingSafeEqual } from 'node:crypto'
import type { ClientAssertionVerifier } from './client-assertions'
import type { Directory } from './directory'
import { EntraError, missingParameter } from './entra-errors'
import type { SeedApplication, SeedTenant } from './seed-schema'

export type TokenParams = Record<string, string>

export interface AuthenticatedClient {
  app: SeedApplication
  /** True when a secret, certificate or federated credential proved the client; false for a public client that sent none. */
  confidential: boolean
}

/** How a `client_assertion` gets checked: the verifier and the tenant segment the request used (its `aud`). */
export interface AssertionCheck {
  verifier: ClientAssertionVerifier
  segment: string
}

/**
 * RFC 6749 §2.3.1 as Entra applies it: secret in the body or HTTP Basic, public clients send none.
 * `requireSecret` is for grants only confidential clients may use (OBO, client credentials).
 */
export async function authenticateClient (
  directory: Directory,
  tenant: SeedTenant,
  params: TokenParams,
  authorization: string | undefined,
  requireSecret: boolean,
  assertions?: AssertionCheck
): Promise<AuthenticatedClient> {
  const basic = parseBasic(authorization)
  const clientId = params.client_id ?? basic?.clientId
  if (clientId === undefined || clientId === '') throw missingParameter('client_id')
  const app = directory.application(tenant, clientId)
  if (app === undefined) {
    throw new EntraError('unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant.name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`)
  }
  if (params.client_assertion !== undefined) {
    if (assertions === undefined) {
      throw new EntraError('invalid_client', 700027, `Client assertion failed signature validation. No certificate or federated credential is registered for app '${app.clientId}' in this emulator; use a client secret.`)
    }
    await assertions.verifier.verify(tenant, app, params.client_assertion, params.client_assertion_type, assertions.segment)
    return { app, confidential: true }
  }
  const secret = params.client_secret ?? basic?.secret
  if (secret === undefined) {
    if (app.publicClient === true && !requireSecret) return { app, confidential: false }
    throw new EntraError('invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
  }
  if (app.publicClient === true && (app.secrets ?? []).length === 0) {
    throw new EntraError('invalid_client', 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
  }
  if (!(app.secrets ?? []).some((known) => sameSecret(known, secret))) {
    throw new EntraError('invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`)
  }
  return { app, confidential: true }
}

export function parseBasic (authorization: string | undefined): { clientId: string, secret: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(authorization ?? '')
  if (match?.[1] === undefined) return undefined
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  // RFC 6749 §2.3.1: both halves are form-urlencoded before being joined.
  const unescape = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '))
  try {
    return { clientId: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

function sameSecret (known: string, presented: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(known), digest(presented))
}
