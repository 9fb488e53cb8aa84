import type { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici'
import type { RouteConfig } from '../config/types'
import { ClientClosedRequestError, UpstreamTimeoutError, UpstreamUnreachableError } from '../errors'
import { trustOptions } from '../net/https-agent'
import { upstreamRequestHeaders, type ForwardContext } from './headers'
import { innerRoutesOf, targetPath, type InnerRoutes } from './target-path'
import { UpstreamAnswer, type UpstreamResponse } from './upstream-answer'

export type { UpstreamResponse } from './upstream-answer'

export interface ForwardRequest {
  method: string
  /** From `pathFor`, checked before any token is acquired for the request. */
  path: string
  headers: import('node:http').IncomingHttpHeaders
  /** The request body: bytes read for a possible replay, the unread stream, or none. */
  body: Buffer | Readable | undefined
  /** Emits 'abort' when the client goes away before the answer arrived, so the upstream request is cancelled too. */
  signal: EventEmitter
}

export interface ForwarderOptions {
  /** Seconds to the upstream's status line, by status (or 'error'): the upstream latency metric. */
  observe?: (outcome: number | 'error', seconds: number) => void
  /** `server.trustProxy`: the peer is a load balancer whose X-Forwarded-For/Proto/Host are kept. */
  trustProxy?: boolean
}

/** Sends requests below one route prefix to its upstream over a dedicated connection pool. */
export class Forwarder {
  private readonly pool: Pool
  private readonly basePath: string
  private readonly innerRoutes: InnerRoutes

  constructor (private readonly route: RouteConfig, private readonly options: ForwarderOptions = {}) {
    this.pool = new Pool(route.upstream.origin, {
      connect: { timeout: route.timeouts.connectMs, ...trustOptions(route.extraCaPems) },
      headersTimeout: route.timeouts.headersMs,
      bodyTimeout: route.timeouts.bodyMs
    })
    this.basePath = route.upstream.pathname
    this.innerRoutes = innerRoutesOf(route.prefix, route.innerPrefixes)
  }

  /** The upstream path for a raw request URL; throws BadRequestPathError for escape attempts. */
  pathFor (rawUrl: string): string {
    return targetPath(rawUrl, this.route.prefix, this.basePath, this.innerRoutes)
  }

  forward (req: ForwardRequest, ctx: ForwardContext): Promise<UpstreamResponse> {
    const options: Dispatcher.DispatchOptions = {
      origin: this.route.upstream.origin,
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(req.headers, ctx, this.options.trustProxy === true),
      body: req.body ?? null
    }
    const observe = this.options.observe
    const started = observe === undefined ? 0 : performance.now()
    return new Promise((resolve, reject) => {
      this.pool.dispatch(options, new UpstreamAnswer({
        resolve,
        reject: (err) => { reject(upstreamError(err, this.route.prefix)) },
        broken: (err) => upstreamError(err, this.route.prefix),
        onHeaders: observe === undefined ? undefined : (outcome) => { observe(outcome, (performance.now() - started) / 1000) }
      }, req.signal, req.method === 'HEAD'))
    })
  }

  close (): Promise<void> {
    return this.pool.close()
  }
}

function upstreamError (err: unknown, prefix: string): Error {
  // A body timeout lands here only for an answer read whole, before anything was sent to the client.
  if (err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamTimeoutError(`The upstream of ${prefix} did not answer in time`)
  }
  if (err instanceof undiciErrors.RequestAbortedError) return new ClientClosedRequestError()
  return new UpstreamUnreachableError(`The upstream of ${prefix} could not be reached (${(err as { code?: string }).code ?? 'error'})`)
}
