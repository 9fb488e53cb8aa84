/** The validated configuration with every default applied: what the rest of the gateway reads. */

export type GatewayCredential =
  | { kind: 'clientSecret', clientSecret: string }
  | { kind: 'certificate', certificateFile: string, privateKeyFile: string }
  | { kind: 'federatedTokenFile', federatedTokenFile: string }
  | { kind: 'managedIdentity', clientId?: string }

export interface IdentityConfig {
  /** Authority host without a trailing slash, e.g. https://login.microsoftonline.com. */
  instance: string
  /** Home tenant GUID, or 'organizations' for a multi-tenant gateway. */
  tenantId: string
  clientId: string
  audiences: string[]
  allowedTenants: string[]
  /** Declared to Entra only for callers whose own token declares them (xms_cc); default ['cp1']. */
  clientCapabilities: string[]
  clockSkewSeconds: number
  /** Least time between two JWKS fetches caused by unknown kids. */
  keyRefreshCooldownSeconds: number
  credential: GatewayCredential
  /** PEM contents of `tls.caFile`, already read. */
  extraCaPems: string[]
}

export interface UserAccess { requireScopes: string[], scopes: string[], authContext?: string }
export interface AppAccess { requireRoles: string[], scopes: string[] }

export interface RouteTimeouts { connectMs: number, headersMs: number, bodyMs: number }

export interface RouteConfig {
  prefix: string
  upstream: URL
  user?: UserAccess
  app?: AppAccess
  timeouts: RouteTimeouts
}

export interface GatewayConfig {
  server: { host: string, port: number, cors?: { origins: string[] } }
  identity: IdentityConfig
  routes: RouteConfig[]
  tokenCache: { redisUrl?: string, encryptionKey?: string }
}
