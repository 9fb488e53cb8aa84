import type { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici'
import type { RouteConfig } from '../config/types'
import { UpstreamTimeoutError, UpstreamUnreachableError } from '../errors'
import { trustedCas } from '../net/https-agent'
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardContext } from './headers'
import { targetPath } from './target-path'

export interface ForwardRequest {
  method: string
  /** From `pathFor`, checked before any token is acquired for the request. */
  path: string
  headers: import('node:http').IncomingHttpHeaders
  /** The request body: bytes read for a possible replay, the unread stream, or none. */
  body: Buffer | Readable | undefined
  /** Aborted (or emits 'abort') when the client goes away, so the upstream request is cancelled too. */
  signal: AbortSignal | EventEmitter
}

export interface UpstreamResponse {
  status: number
  headers: Record<string, string | string[]>
  body: Readable
}

/** Sends requests below one route prefix to its upstream over a dedicated connection pool. */
export class Forwarder {
  private readonly pool: Pool
  private readonly basePath: string

  constructor (private readonly route: RouteConfig) {
    const ca = trustedCas(route.extraCaPems)
    this.pool = new Pool(route.upstream.origin, {
      connect: { timeout: route.timeouts.connectMs, ...(ca ? { ca } : {}) },
      headersTimeout: route.timeouts.headersMs,
      bodyTimeout: route.timeouts.bodyMs
    })
    this.basePath = route.upstream.pathname
  }

  /** The upstream path for a raw request URL; throws BadRequestPathError for escape attempts. */
  pathFor (rawUrl: string): string {
    return targetPath(rawUrl, this.route.prefix, this.basePath)
  }

  async forward (req: ForwardRequest, ctx: ForwardContext): Promise<UpstreamResponse> {
    const options: Dispatcher.RequestOptions = {
      origin: this.route.upstream.origin,
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(req.headers, ctx),
      body: req.body ?? null,
      signal: req.signal
    }
    try {
      const res = await this.pool.request(options)
      return { status: res.statusCode, headers: clientResponseHeaders(res.headers), body: res.body }
    } catch (err) {
      throw upstreamError(err, this.route.prefix)
    }
  }

  close (): Promise<void> {
    return this.pool.close()
  }
}

function upstreamError (err: unknown, prefix: string): Error {
  if (err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError) {
    return new UpstreamTimeoutError(`The upstream of ${prefix} did not answer in time`)
  }
  if (err instanceof undiciErrors.RequestAbortedError) return err
  return new UpstreamUnreachableError(`The upstream of ${prefix} could not be reached (${(err as { code?: string }).code ?? 'error'})`)
}
