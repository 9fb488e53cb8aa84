import { Type, type Static } from '@sinclair/typebox'

const Guid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', description: 'a GUID' })
const HttpUrl = Type.String({ pattern: '^https?://[^\\s/]+(/\\S*)?$', description: 'an http(s) URL' })
const HttpsUrl = Type.String({ pattern: '^https://[^\\s/]+(/\\S*)?$', description: 'an https URL' })
const NonEmpty = Type.String({ minLength: 1, description: 'a non-empty string' })
const Strings = Type.Array(NonEmpty, { minItems: 1, description: 'a non-empty list of strings' })
// `secret: true`: a config error describes the value (its length, where it came from), never shows
// it (src/config/shown-value.ts). URLs need no mark: every one shown loses its userinfo and query.
const CacheSecret = Type.String({ minLength: 16, secret: true, description: 'a secret of at least 16 characters (32 random bytes, base64, recommended)' })

// Marked whole too: a string where the block belongs is most likely the secret itself.
const Credential = Type.Object({
  clientSecret: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'a non-empty string' })),
  certificate: Type.Optional(Type.Object({ certificateFile: NonEmpty, privateKeyFile: NonEmpty }, { additionalProperties: false })),
  federatedTokenFile: Type.Optional(NonEmpty),
  managedIdentity: Type.Optional(Type.Object({ clientId: Type.Optional(Guid) }, { additionalProperties: false }))
}, { additionalProperties: false, secret: true })

const UserAccess = Type.Object({
  requireScopes: Strings,
  scopes: Strings,
  authContext: Type.Optional(Type.String({ pattern: '^[cC]([1-9]|1[0-9]|2[0-5])$', description: 'an auth context id c1..c25' }))
}, { additionalProperties: false })

const AppAccess = Type.Object({
  requireRoles: Strings,
  scopes: Strings
}, { additionalProperties: false })

const ShortScope = Type.String({ pattern: '^[^\\s/]+$', description: 'a scope name as it appears in scp (no resource prefix)' })
const FullScope = Type.String({ pattern: '^\\S+/[^\\s/]+$', description: 'a full scope URI such as api://<gateway>/Tools.Read' })
const RedirectUri = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9+.-]*:\\S+$', description: 'an absolute redirect URI' })

/** DESIGN.md "MCP servers behind the gateway": the route fronts an MCP server (streamable HTTP). */
const McpAccess = Type.Object({
  publicUrl: HttpUrl,
  clientId: Guid,
  redirectUris: Type.Array(RedirectUri, { minItems: 1, description: 'a non-empty list of redirect URIs' }),
  scopesSupported: Type.Array(FullScope, { minItems: 1, description: 'a non-empty list of full scope URIs' }),
  tools: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Object({
    requireScopes: Type.Array(ShortScope, { minItems: 1, description: 'a non-empty list of scope names' })
  }, { additionalProperties: false })))
}, { additionalProperties: false })

const Route = Type.Object({
  prefix: Type.String({ pattern: '^/[A-Za-z0-9._~!$&\'()*+,;=:@%/-]*[^/]$', description: 'a path starting with / and not ending with /' }),
  upstream: HttpUrl,
  user: Type.Optional(UserAccess),
  app: Type.Optional(AppAccess),
  mcp: Type.Optional(McpAccess),
  tls: Type.Optional(Type.Object({ caFile: NonEmpty }, { additionalProperties: false })),
  replayBodyLimitBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 * 1024 * 1024 })),
  timeouts: Type.Optional(Type.Object({
    connectMs: Type.Optional(Type.Integer({ minimum: 1 })),
    headersMs: Type.Optional(Type.Integer({ minimum: 1 })),
    bodyMs: Type.Optional(Type.Integer({ minimum: 1 }))
  }, { additionalProperties: false }))
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  server: Type.Optional(Type.Object({
    host: Type.Optional(NonEmpty),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    adminPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'a port for /healthz, /readyz and /metrics' })),
    trustProxy: Type.Optional(Type.Boolean()),
    workers: Type.Optional(Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], { description: "'auto' (one per available core) or a whole number of worker processes from 1 to 256" })),
    timeouts: Type.Optional(Type.Object({
      headersMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000, description: 'time for a client to send its request headers' })),
      requestMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000, description: 'time for a client to send its whole request, body included' })),
      keepAliveMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000, description: 'how long an idle keep-alive connection stays open' }))
    }, { additionalProperties: false })),
    overload: Type.Optional(Type.Object({
      maxEventLoopDelayMs: Type.Optional(Type.Integer({ minimum: 0 })),
      maxHeapUsedBytes: Type.Optional(Type.Integer({ minimum: 0 })),
      maxRssBytes: Type.Optional(Type.Integer({ minimum: 0 })),
      retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 }))
    }, { additionalProperties: false })),
    rateLimit: Type.Optional(Type.Object({
      max: Type.Integer({ minimum: 1, description: 'requests allowed per window' }),
      windowSeconds: Type.Integer({ minimum: 1, maximum: 86400 }),
      key: Type.Union([Type.Literal('user'), Type.Literal('client')], { description: "'user' (oid) or 'client' (azp)" })
    }, { additionalProperties: false })),
    cors: Type.Optional(Type.Object({
      origins: Type.Array(Type.String({ pattern: '^https?://[^/\\s]+$', description: 'an origin such as https://app.contoso.com (scheme and host, no path)' }), { minItems: 1, description: 'a non-empty list of origins' }),
      credentials: Type.Optional(Type.Boolean()),
      exposedHeaders: Type.Optional(Type.Array(NonEmpty)),
      maxAgeSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400 }))
    }, { additionalProperties: false }))
  }, { additionalProperties: false })),
  identity: Type.Object({
    instance: Type.Optional(HttpsUrl),
    tenantId: Type.Optional(Type.Union([Guid, Type.Literal('organizations')], { description: "a tenant GUID or 'organizations'" })),
    clientId: Type.Optional(Guid),
    audiences: Type.Optional(Strings),
    allowedTenants: Type.Optional(Type.Array(Guid, { minItems: 1, description: 'a non-empty list of tenant GUIDs' })),
    clientCapabilities: Type.Optional(Type.Array(NonEmpty)),
    clockSkewSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    keyRefreshCooldownSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
    credential: Type.Optional(Credential),
    /** Deadline for one call to Entra (or the managed identity endpoint), connect to last byte. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 120_000 })),
    tls: Type.Optional(Type.Object({ caFile: Type.Optional(NonEmpty) }, { additionalProperties: false }))
  }, { additionalProperties: false }),
  routes: Type.Array(Route, { minItems: 1, description: 'a non-empty list of routes' }),
  tokenCache: Type.Optional(Type.Object({
    redis: Type.Optional(Type.Object({
      url: Type.String({ pattern: '^rediss?(\\+sentinel|\\+cluster)?://', description: 'a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL' }),
      commandTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000 }))
    }, { additionalProperties: false })),
    encryptionKey: Type.Optional(CacheSecret),
    previousEncryptionKeys: Type.Optional(Type.Array(CacheSecret, { secret: true })),
    l1: Type.Optional(Type.Object({
      maxEntries: Type.Optional(Type.Integer({ minimum: 1 })),
      maxBytes: Type.Optional(Type.Integer({ minimum: 65_536 }))
    }, { additionalProperties: false })),
    expiryMarginSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    lockMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000 }))
  }, { additionalProperties: false })),
  telemetry: Type.Optional(Type.Object({
    /** An OTLP/HTTP receiver's base URL, like OTEL_EXPORTER_OTLP_ENDPOINT: /v1/traces is appended. */
    otlpEndpoint: Type.Optional(HttpUrl),
    protocol: Type.Optional(Type.Union([Type.Literal('http/protobuf'), Type.Literal('http/json')], { description: "'http/protobuf' or 'http/json'" })),
    serviceName: Type.Optional(NonEmpty),
    sampleRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 }))
  }, { additionalProperties: false }))
}, { additionalProperties: false })

export type RawConfig = Static<typeof ConfigSchema>
export type RawRoute = Static<typeof Route>
