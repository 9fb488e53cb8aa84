import { InvalidTokenError } from '../errors'

interface PrincipalBase {
  /** Tenant the token was issued in (lower-case GUID). */
  tenantId: string
  /** Client id of the application that obtained the token (`azp` in v2, `appid` in v1). */
  clientId: string
  /** Object id of the user or service principal: the key for resource-level decisions. */
  objectId: string
  /** Seconds since the epoch; the incoming assertion is useless after it. */
  expiresAt: number
  /** 1.0 or 2.0 */
  tokenVersion: string
}

export interface DelegatedPrincipal extends PrincipalBase {
  kind: 'user'
  subject: string
  scopes: string[]
  /** Client capabilities the caller declared (`xms_cc`), lower-cased: `cp1` means it handles claims challenges. */
  clientCapabilities: string[]
  /** Auth contexts satisfied (`acrs`). */
  authContexts: string[]
  name?: string
  username?: string
}

export interface AppPrincipal extends PrincipalBase {
  kind: 'app'
  roles: string[]
}

export type Principal = DelegatedPrincipal | AppPrincipal

export type VerifiedClaims = Record<string, unknown>

/**
 * Entra marks app-only tokens with `idtyp: app` when the API asks for it; otherwise the only signal
 * is `roles` without `scp`. A token with neither carries no permission at all and is refused.
 */
export function principalFromClaims (claims: VerifiedClaims, tenantId: string): Principal {
  const scp = typeof claims.scp === 'string' ? claims.scp.split(' ').filter(Boolean) : []
  const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : []
  const clientId = str(claims.azp) ?? str(claims.appid)
  const objectId = str(claims.oid)
  const exp = typeof claims.exp === 'number' ? claims.exp : 0
  const tokenVersion = str(claims.ver) ?? '1.0'
  if (clientId === undefined) throw new InvalidTokenError('The token names no client application (azp/appid)', 'claims')
  if (objectId === undefined) throw new InvalidTokenError('The token has no oid claim', 'claims')

  const isApp = claims.idtyp === 'app' || (scp.length === 0 && roles.length > 0)
  if (isApp) {
    if (roles.length === 0) throw new InvalidTokenError('The app-only token carries no roles', 'no_permissions')
    return { kind: 'app', tenantId, clientId, objectId, expiresAt: exp, tokenVersion, roles }
  }
  if (scp.length === 0) throw new InvalidTokenError('The token carries neither scp nor roles', 'no_permissions')
  const principal: DelegatedPrincipal = {
    kind: 'user',
    tenantId,
    clientId,
    objectId,
    expiresAt: exp,
    tokenVersion,
    subject: str(claims.sub) ?? objectId,
    scopes: scp,
    clientCapabilities: stringList(claims.xms_cc).map((c) => c.toLowerCase()),
    authContexts: stringList(claims.acrs)
  }
  const name = str(claims.name)
  const username = str(claims.preferred_username) ?? str(claims.upn)
  if (name !== undefined) principal.name = name
  if (username !== undefined) principal.username = username
  return principal
}

function str (value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined
}

function stringList (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}
