import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { IdentityConfig, TokenCacheConfig } from '../src/config/types'
import { ConfidentialClients } from '../src/acquisition/confidential-clients'
import { L2Redis } from '../src/acquisition/l2-redis'
import { createMsalNetworkClient, type IdentityCall } from '../src/acquisition/msal-network-client'
import { TokenAcquirer } from '../src/acquisition/token-acquirer'
import { TokenCache } from '../src/acquisition/token-cache'
import { createHttpsAgent } from '../src/net/https-agent'

declare module 'fastify' {
  interface FastifyInstance {
    tokenAcquirer: TokenAcquirer
    /** Why the gateway's own credential cannot be used right now, or undefined (readiness). */
    credentialCheck: () => Promise<string | undefined>
  }
}

export interface TokenAcquisitionOptions {
  identity: IdentityConfig
  tokenCache: TokenCacheConfig
  /** Every call to the identity provider (metrics). */
  onIdentityCall?: (call: IdentityCall) => void
}

const REDIS_ERROR_LOG_INTERVAL_MS = 10_000

const tokenAcquisition: FastifyPluginAsync<TokenAcquisitionOptions> = async (fastify, { identity, tokenCache, onIdentityCall }) => {
  const agent = createHttpsAgent({ ca: identity.extraCaPems })
  const clients = new ConfidentialClients(identity, createMsalNetworkClient(agent, onIdentityCall ? { onCall: onIdentityCall } : {}), fastify.log)
  fastify.decorate('credentialCheck', () => clients.checkCredential())
  fastify.addHook('onReady', async () => { clients.checkCredential().catch(() => {}) })

  let lastRedisLog = 0
  const l2 = tokenCache.redisUrl !== undefined && tokenCache.encryptionKey !== undefined
    ? new L2Redis({
      url: tokenCache.redisUrl,
      encryptionKey: tokenCache.encryptionKey,
      previousEncryptionKeys: tokenCache.previousEncryptionKeys,
      commandTimeoutMs: tokenCache.redisCommandTimeoutMs,
      onError: (err) => {
        // ioredis reports every reconnection attempt; one line per interval is enough.
        const now = Date.now()
        if (now - lastRedisLog < REDIS_ERROR_LOG_INTERVAL_MS) return
        lastRedisLog = now
        fastify.log.warn({ err: { message: err.message } }, 'token cache: Redis unavailable, serving from L1 and Entra')
      }
    })
    : undefined
  // Start with L2 when Redis answers soon; without it the gateway serves from L1 and Entra meanwhile.
  if (l2 !== undefined && !await l2.ready(2000)) fastify.log.warn('token cache: Redis not reachable at start; continuing without L2 until it is')
  const cache = new TokenCache({
    l1: tokenCache.l1,
    l2,
    expiryMarginSeconds: tokenCache.expiryMarginSeconds,
    lockMs: tokenCache.lockMs
  })
  fastify.decorate('tokenAcquirer', new TokenAcquirer(clients, { clientId: identity.clientId, homeTenantId: identity.tenantId, cache }))
  fastify.addHook('onClose', async () => {
    await cache.close()
    await agent.close()
  })
}

export default fp(tokenAcquisition, { name: 'obo-gateway-token-acquisition', fastify: '5.x' })
