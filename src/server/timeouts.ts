import type { FastifyServerOptions } from 'fastify'
import type { ServerTimeouts } from '../config/types'

/**
 * Fastify's server options for `server.timeouts`. Node enforces headers and whole-request limits
 * on a sweep (connectionsCheckingInterval, 30 s by default); a sweep of a quarter of the shortest
 * limit, but at most every second, keeps a slow client's actual allowance close to the configured one.
 */
export function serverTimeoutOptions (timeouts: ServerTimeouts): Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout'> & { http: { headersTimeout: number, requestTimeout: number, connectionsCheckingInterval: number } } {
  return {
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    http: {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(timeouts.headersMs / 4)))
    }
  }
}
