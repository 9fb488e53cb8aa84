import type { Cluster, ClusterNode, Redis, RedisOptions } from 'ioredis'
import { parseRedisUrl, type RedisTarget } from './url'

/**
 * ioredis, loaded on first use: a gateway without Redis (the default, and every bench of the hot
 * path) does not carry it, about 1 MB of heap that every major GC would mark again.
 */
function ioredis (): typeof import('ioredis') {
  return require('ioredis') as typeof import('ioredis')
}

/** Whether a client talks to a Redis Cluster (MOVED/ASK retries between sends: commandTimeout does not bound a command). */
export function isCluster (client: Redis | Cluster): client is Cluster {
  return client instanceof ioredis().Cluster
}

/** A client for a `tokenCache.redis.url` (already validated by config loading). */
export function connectRedis (url: string, commandTimeoutMs: number): Redis | Cluster {
  return createRedisClient(parseRedisUrl(url), commandTimeoutMs)
}

/** An ioredis client that fails fast while disconnected and reconnects forever (the token cache and the rate limiter). */
export function createRedisClient (target: RedisTarget, commandTimeoutMs: number): Redis | Cluster {
  const common: RedisOptions = {
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(1000, commandTimeoutMs * 4),
    // Fail at once while disconnected instead of queueing: the request goes on without L2.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect forever, backing off to 2 s between attempts.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    lazyConnect: false
  }
  const { Cluster, Redis } = ioredis()
  switch (target.mode) {
    case 'standalone':
      return new Redis(target.url, common)
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: target.sentinels,
        name: target.name,
        db: target.db,
        ...(target.username !== undefined ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        ...(target.sentinelUsername !== undefined ? { sentinelUsername: target.sentinelUsername } : {}),
        ...(target.sentinelPassword !== undefined ? { sentinelPassword: target.sentinelPassword } : {}),
        ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 100, 2000)
      })
    case 'cluster': {
      const { retryStrategy: _ignored, enableOfflineQueue: _offline, ...redisOptions } = common
      return new Cluster(target.nodes as ClusterNode[], {
        enableOfflineQueue: false,
        clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2000),
        redisOptions: {
          ...redisOptions,
          ...(target.username !== undefined ? { username: target.username } : {}),
          ...(target.password !== undefined ? { password: target.password } : {}),
          ...(target.tls ? { tls: {} } : {})
        }
      })
    }
  }
}
