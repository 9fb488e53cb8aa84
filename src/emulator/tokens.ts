import { createHash, randomBytes } from 'node:crypto'
import type { Keyring } from './keyring'
import type { ResourceScopes } from './scopes'
import type { SeedApplication, SeedManagedIdentity, SeedTenant } from './seed-schema'

export interface UserIdentity {
  oid: string
  name: string
  username: string
  /** How the user signed in (`amr`); default ['pwd']. OBO carries the assertion's through. */
  amr?: string[]
}

export interface AccessTokenRequest {
  tenant: SeedTenant
  client: SeedApplication
  /** How the client proved itself: `azpacr`/`appidacr` are '1' for a secret, '0' for a public client. */
  clientAuthenticated: boolean
  scopes: ResourceScopes
  /** Absent for app-only tokens. */
  user?: UserIdentity
  /** From the `claims` request parameter (`access_token.xms_cc.values`), as sent. */
  clientCapabilities?: unknown[]
  /** Auth contexts (`acrs`) a claims request asked for. */
  authContexts?: string[]
  /** `iat`/`nbf` when not now (a revocation or an `nbf` claims request says later); seconds. */
  issuedAt?: number
}

export interface IssuerSettings {
  /** The emulator's base URL, known only once it listens. */
  url: () => string
  lifetimeSeconds: number
}

export const v2Issuer = (url: string, tenantId: string): string => `${url}/${tenantId}/v2.0`
export const v1Issuer = (tenantId: string): string => `https://sts.windows.net/${tenantId}/`

/** Builds and signs tokens with Entra's claim sets; which version is the resource app's choice. */
export class TokenIssuer {
  constructor (private readonly keyring: Keyring, private readonly settings: IssuerSettings) {}

  get lifetimeSeconds (): number {
    return this.settings.lifetimeSeconds
  }

  accessToken (request: AccessTokenRequest): string {
    const { tenant, client, scopes, user } = request
    const version = scopes.resource.accessTokenAcceptedVersion === 2 ? 2 : 1
    const now = request.issuedAt ?? Math.floor(Date.now() / 1000)
    const acr = request.clientAuthenticated ? '1' : '0'
    const principalId = servicePrincipalId(tenant.id, client.clientId)
    const claims: Record<string, unknown> = {
      aud: version === 2 ? scopes.resource.clientId : scopes.identifier,
      iss: version === 2 ? v2Issuer(this.settings.url(), tenant.id) : v1Issuer(tenant.id),
      iat: now,
      nbf: now,
      exp: now + this.settings.lifetimeSeconds
    }
    if (user !== undefined) claims.amr = user.amr ?? ['pwd']
    if (version === 2) {
      claims.azp = client.clientId
      claims.azpacr = acr
    } else {
      claims.appid = client.clientId
      claims.appidacr = acr
    }
    if (user !== undefined) {
      claims.name = user.name
      claims.oid = user.oid
      if (version === 2) claims.preferred_username = user.username
      claims.scp = scopes.names.join(' ')
      claims.sub = pairwiseSubject(tenant.id, user.oid, scopes.resource.clientId)
    } else {
      claims.idtyp = 'app'
      claims.oid = principalId
      if (scopes.names.length > 0) claims.roles = scopes.names
      claims.sub = principalId
    }
    claims.tid = tenant.id
    if (user !== undefined && version === 1) {
      claims.unique_name = user.username
      claims.upn = user.username
    }
    claims.uti = randomBytes(16).toString('base64url')
    claims.ver = version === 2 ? '2.0' : '1.0'
    if (request.clientCapabilities !== undefined) claims.xms_cc = request.clientCapabilities
    if (request.authContexts !== undefined && user !== undefined) claims.acrs = request.authContexts
    return this.keyring.sign(tenant.id, claims, version)
  }

  /**
   * What a managed identity endpoint hands out: an app-only v2 token whose subject is the identity's
   * object id. For `api://AzureADTokenExchange` it is the assertion of "managed identity as a
   * federated credential" (issuer `<instance>/<tid>/v2.0`, subject = object id).
   */
  managedIdentityToken (tenant: SeedTenant, identity: SeedManagedIdentity, audience: string, roles: string[] = []): string {
    const now = Math.floor(Date.now() / 1000)
    return this.keyring.sign(tenant.id, {
      aud: audience,
      iss: v2Issuer(this.settings.url(), tenant.id),
      iat: now,
      nbf: now,
      exp: now + this.settings.lifetimeSeconds,
      azp: identity.clientId,
      // '2': the client proved itself with a certificate, which is how Azure authenticates managed identities.
      azpacr: '2',
      idtyp: 'app',
      oid: identity.objectId,
      ...(roles.length > 0 ? { roles } : {}),
      sub: identity.objectId,
      tid: tenant.id,
      uti: randomBytes(16).toString('base64url'),
      ver: '2.0'
    }, 2)
  }

  /** Always v2 (the v2 endpoint's id_token), audience = the client that signed the user in; `extra` adds nonce and auth_time. */
  idToken (tenant: SeedTenant, client: SeedApplication, user: UserIdentity, extra: { nonce?: string, auth_time?: number } = {}): string {
    const now = Math.floor(Date.now() / 1000)
    return this.keyring.sign(tenant.id, {
      ...extra,
      aud: client.clientId,
      iss: v2Issuer(this.settings.url(), tenant.id),
      iat: now,
      nbf: now,
      exp: now + this.settings.lifetimeSeconds,
      name: user.name,
      oid: user.oid,
      preferred_username: user.username,
      sub: pairwiseSubject(tenant.id, user.oid, client.clientId),
      tid: tenant.id,
      ver: '2.0'
    }, 2)
  }
}

/** What msal turns into the home account id (`<uid>.<utid>`). */
export function clientInfo (oid: string, tenantId: string): string {
  return Buffer.from(JSON.stringify({ uid: oid, utid: tenantId })).toString('base64url')
}

/** Entra's `sub` is pairwise: the same user looks different to each application. */
export function pairwiseSubject (tenantId: string, oid: string, appClientId: string): string {
  return createHash('sha256').update(`${tenantId}|${oid}|${appClientId}`.toLowerCase()).digest('base64url')
}

/** A client's service principal differs from its client id in Entra; derive a stable stand-in. */
export function servicePrincipalId (tenantId: string, clientId: string): string {
  const hex = createHash('sha256').update(`sp|${tenantId}|${clientId}`.toLowerCase()).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}
