/**
 * Every default of the configuration file (README, "Configuration"), in one place: config loading
 * fills them in, and the parts usable on their own (plugins/entra-auth, the token cache, the msal
 * network client) fall back to the same values.
 */
export const DEFAULTS = {
  server: {
    host: '0.0.0.0',
    port: 8080,
    trustProxy: false,
    workers: 1,
    // Node's own limits, which Fastify turns off (requestTimeout 0); keep-alive above the 60 s idle
    // timeout of common load balancers, so they never reuse a connection the gateway is closing.
    timeouts: { headersMs: 10_000, requestMs: 60_000, keepAliveMs: 72_000 },
    overload: { maxEventLoopDelayMs: 1000, maxHeapUsedBytes: 0, maxRssBytes: 0, retryAfterSeconds: 10 },
    cors: { credentials: false, exposedHeaders: [] as readonly string[], maxAgeSeconds: 600 }
  },
  identity: {
    instance: 'https://login.microsoftonline.com',
    // The gateway passes claims challenges on, so it may declare cp1 for callers that declare it too.
    clientCapabilities: ['cp1'] as readonly string[],
    clockSkewSeconds: 300,
    keyRefreshCooldownSeconds: 30,
    /** Entra answers in well under a second; past this the client is better told to retry (503). */
    timeoutMs: 10_000,
    /** Verified tokens remembered by hash (plugins/entra-auth). */
    verifiedTokenCacheSize: 10_000
  },
  route: {
    timeouts: { connectMs: 5_000, headersMs: 30_000, bodyMs: 60_000 },
    replayBodyLimitBytes: 64 * 1024
  },
  tokenCache: {
    l1: { maxEntries: 50_000, maxBytes: 128 * 1024 * 1024 },
    expiryMarginSeconds: 300,
    lockMs: 3000,
    redisCommandTimeoutMs: 250
  }
} as const
