import type { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { CacheKey } from '../acquisition/cache-key'
import type { DownstreamToken, UserTokenOptions } from '../acquisition/token-acquirer'
import type { RouteConfig } from '../config/types'
import { callDownstream } from '../forwarding/downstream-call'
import type { Forwarder, UpstreamResponse } from '../forwarding/forwarder'
import { refuseQueryToken } from '../forwarding/query-token'
import { prepareBody, type RequestBody } from '../forwarding/request-body'
import { tracedSteps } from '../observability/tracing'
import type { RequestTrace, TraceableSteps } from '../observability/tracing-types'
import type { ToolCallGuard } from '../mcp/tool-guard'
import type { Assertion } from '../validation/assertion'
import type { AppPrincipal, DelegatedPrincipal, Principal } from '../validation/principal'
import { authorize } from '../validation/requirements'

/** What the pipeline asks of token acquisition; TokenAcquirer is one. */
export interface DownstreamTokens {
  forUser: (principal: DelegatedPrincipal, assertion: Assertion, scopes: readonly string[], options?: UserTokenOptions) => Promise<DownstreamToken>
  forApp: (principal: AppPrincipal, scopes: readonly string[]) => Promise<DownstreamToken>
  evict: (key: CacheKey) => Promise<void>
}

/** One proxied route: its configuration, its upstream and where its tokens come from. */
export interface ProxyRoute {
  route: RouteConfig
  forwarder: Forwarder
  tokens: DownstreamTokens
  /** An MCP route's per-tool rules, checked on the body before any token is acquired. */
  guardToolCall?: ToolCallGuard
}

/** An authenticated request, as the pipeline needs it (no Fastify types). */
export interface ProxiedRequest {
  principal: Principal
  /** The incoming token: the OBO assertion for users. */
  assertion: Assertion
  method: string
  /** The URL as received: path (still encoded) and query. */
  url: string
  headers: IncomingHttpHeaders
  /** The unread body stream, or undefined for a request without one. */
  body: Readable | undefined
  /** Invites the body of a client that sent `Expect: 100-continue`: called once nothing but the body is left to check. */
  continueBody: () => void
  /** The address at the other end of the connection (the client, or the load balancer in front). */
  peerAddress: string | undefined
  protocol: string
  correlationId: string
  /** Emits 'abort' when the client goes away: the upstream request is cancelled. */
  signal: EventEmitter
  /** The request's spans when tracing is on. */
  trace?: RequestTrace | undefined
}

const NO_BODY: RequestBody = { replayable: true, bytes: undefined }
// authorize() has already refused callers whose kind has no block on this route. One shared empty
// list: scope lists are remembered by identity (normalized scopes, OBO cache keys).
const NO_SCOPES: readonly string[] = []

/**
 * A proxied request after authentication: authorize the caller for the route, check the URL,
 * acquire the downstream token, forward, and handle a 401 from the downstream API (evict, retry
 * once; then a challenge for the caller, or a 502). Throws a GatewayError for every refusal;
 * nothing is acquired or sent before the caller and the URL have passed.
 */
export async function proxyRequest ({ route, forwarder, tokens, guardToolCall }: ProxyRoute, request: ProxiedRequest): Promise<UpstreamResponse> {
  const { principal } = request
  authorize(principal, route)
  refuseQueryToken(request.url)
  const path = forwarder.pathFor(request.url)
  request.continueBody()
  const body = request.body === undefined ? NO_BODY : await prepareBody(request.body, request.headers['content-length'], route.replayBodyLimitBytes)
  guardToolCall?.(principal, request.method, request.headers, body)
  const steps: TraceableSteps = {
    acquire: (claims) => principal.kind === 'user'
      ? tokens.forUser(principal, request.assertion, route.user?.scopes ?? NO_SCOPES, claims === undefined ? {} : { claims })
      : tokens.forApp(principal, route.app?.scopes ?? NO_SCOPES),
    evict: (token) => tokens.evict(token.cacheKey),
    send: (accessToken, attemptBody, headers = request.headers) => forwarder.forward({ method: request.method, path, headers, body: attemptBody, signal: request.signal }, {
      downstreamToken: accessToken,
      peerAddress: request.peerAddress,
      protocol: request.protocol,
      host: request.headers.host,
      correlationId: request.correlationId
    })
  }
  const { trace } = request
  return await callDownstream(principal, body, trace === undefined ? steps : tracedSteps(trace, principal.kind === 'user' ? 'on_behalf_of' : 'client_credentials', route.upstream, request.method, request.headers, steps))
}
