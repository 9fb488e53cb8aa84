/** The validated configuration with every default applied: what the rest of the gateway reads. */

/** File paths are absolute (relative ones in the file start at its directory), AZURE_FEDERATED_TOKEN_FILE's as given. */
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
  /** Deadline for one identity call (token endpoint, metadata, managed identity endpoint). */
  timeoutMs: number
  /** PEM contents of `tls.caFile`, already read. */
  extraCaPems: string[]
}

export interface UserAccess { requireScopes: string[], scopes: string[], authContext?: string }
export interface AppAccess { requireRoles: string[], scopes: string[] }

/** A route's `mcp` block (DESIGN.md "MCP servers behind the gateway"), checked and resolved. */
export interface McpConfig {
  /** The route's URL as clients see it; its origin is where the metadata and the facade are published. */
  publicUrl: URL
  /** The Entra public client that MCP clients sign in with (what registration hands out). */
  clientId: string
  /** Redirect URIs registration accepts; a loopback entry without a port matches any port (RFC 8252). */
  redirectUris: string[]
  /** Full scope URIs a client must ask for, all of one resource: the gateway's. */
  scopesSupported: string[]
  /** The resource part of `scopesSupported` (e.g. api://<gateway>), which qualifies per-tool scope names. */
  scopeResource: string
  /** Per-tool rules, by tool name: any of `requireScopes` in the token's scp. */
  tools: ReadonlyMap<string, { requireScopes: string[] }>
}

export interface RouteTimeouts { connectMs: number, headersMs: number, bodyMs: number }

export interface RouteConfig {
  prefix: string
  /**
   * The prefixes of the other routes nested in this one (/api/admin for /api), compared without
   * regard to case: a path here that an upstream could read as one of theirs is refused.
   */
  innerPrefixes: string[]
  upstream: URL
  /** PEM contents of `tls.caFile`: extra CAs trusted for this upstream. */
  extraCaPems: string[]
  user?: UserAccess
  app?: AppAccess
  mcp?: McpConfig
  timeouts: RouteTimeouts
  /** Bodies up to this size (with a Content-Length) are held so a downstream claims challenge can be retried. */
  replayBodyLimitBytes: number
}

/** How long a client may take; past them Node answers 408 (headers, request) or closes (idle). */
export interface ServerTimeouts {
  headersMs: number
  requestMs: number
  keepAliveMs: number
}

/** @fastify/under-pressure thresholds; 0 turns one off. */
export interface OverloadConfig {
  maxEventLoopDelayMs: number
  maxHeapUsedBytes: number
  maxRssBytes: number
  retryAfterSeconds: number
}

/** Per caller, per route; Redis-backed when tokenCache.redis is set so all instances share it. */
export interface RateLimitConfig {
  max: number
  windowSeconds: number
  key: 'user' | 'client'
}

export interface CorsConfig {
  origins: string[]
  /** Access-Control-Allow-Credentials; off unless asked for (bearer tokens need no cookies). */
  credentials: boolean
  /** Exposed in addition to WWW-Authenticate and client-request-id, which browsers must read. */
  exposedHeaders: string[]
  maxAgeSeconds: number
}

export interface GatewayConfig {
  server: {
    host: string
    port: number
    /** Health and metrics only there when set; on the main port otherwise. */
    adminPort?: number
    /** Honour X-Forwarded-* from a load balancer in front (client IP, protocol). */
    trustProxy: boolean
    /** Worker processes sharing the port (node:cluster); `auto` is resolved to the available parallelism. */
    workers: number
    timeouts: ServerTimeouts
    overload: OverloadConfig
    rateLimit?: RateLimitConfig
    cors?: CorsConfig
  }
  identity: IdentityConfig
  routes: RouteConfig[]
  tokenCache: TokenCacheConfig
  /** Present when traces are exported (the `telemetry` block or OTEL_EXPORTER_OTLP_*ENDPOINT). */
  telemetry?: TelemetryConfig
}

/** Where and how spans are exported over OTLP; the SDK reads the other OTEL_* variables itself. */
export interface TelemetryConfig {
  /** The full OTLP/HTTP traces URL (…/v1/traces). */
  tracesUrl: string
  protocol: 'http/protobuf' | 'http/json'
  /** service.name; otherwise OTEL_SERVICE_NAME, otherwise obo-gateway. */
  serviceName?: string
  /** Share of new traces recorded (a client's sampled flag is followed); otherwise OTEL_TRACES_SAMPLER. */
  sampleRatio?: number
}

/** `tokenCache`, defaults (src/config/defaults.ts) applied; without `redisUrl` the cache is in-process only. */
export interface TokenCacheConfig {
  redisUrl?: string
  /** Bound on each Redis command, also the rate limiter's. */
  redisCommandTimeoutMs: number
  encryptionKey?: string
  /** Older keys, still accepted for reading what they encrypted (key rotation). */
  previousEncryptionKeys: string[]
  l1: { maxEntries: number, maxBytes: number }
  expiryMarginSeconds: number
  lockMs: number
}
