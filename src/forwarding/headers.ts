import type { IncomingHttpHeaders } from 'node:http'

// RFC 9110 §7.6.1 hop-by-hop fields, plus what a token gateway must never pass on: the caller's
// credentials (Authorization, Cookie) and Expect, which undici refuses (the gateway answers it).
const DROP_REQUEST = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization',
  'proxy-authenticate', 'proxy-connection', 'authorization', 'cookie', 'host', 'expect', 'client-request-id',
  // Who the caller is and what it asked for, as proxies tell upstreams: from a client these are
  // claims nobody checked, and upstreams act on them (IP allow-lists, logs, URL rewriting). The
  // gateway sets X-Forwarded-For/Proto/Host itself; every other X-Forwarded-* is dropped by prefix.
  'forwarded', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
  'x-cluster-client-ip', 'x-original-url', 'x-original-uri', 'x-rewrite-url', 'x-original-host', 'x-host'
])
const DROP_RESPONSE = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate',
  'proxy-connection', 'client-request-id'
])

export interface ForwardContext {
  downstreamToken: string
  /** The address at the other end of the client's connection; undefined once that has closed. */
  peerAddress: string | undefined
  /** http or https, as the gateway received the request (Fastify's request.protocol). */
  protocol: string
  /** The request's Host header. */
  host: string | undefined
  correlationId: string
}

/**
 * Headers the upstream receives: ours first, then the client's own minus hop-by-hop, credentials
 * and forwarding claims. First, because servers that stop reading at some number of fields (Node
 * at 2,000 lines) would otherwise see a client's padding and not who the caller is.
 *
 * With `trustProxy` the peer is a load balancer whose X-Forwarded-For/Proto/Host describe the
 * client: its chain is kept and the balancer's own address appended. Without it the peer is the
 * client, and what it wrote in them is not kept.
 */
export function upstreamRequestHeaders (incoming: IncomingHttpHeaders, ctx: ForwardContext, trustProxy: boolean): Record<string, string | string[]> {
  const chain = trustProxy ? incoming['x-forwarded-for'] : undefined
  const peer = ctx.peerAddress
  const forwardedFor = chain === undefined ? peer : peer === undefined ? String(chain) : `${String(chain)}, ${peer}`
  const out: Record<string, string | string[]> = {
    authorization: `Bearer ${ctx.downstreamToken}`,
    'client-request-id': ctx.correlationId
  }
  if (forwardedFor !== undefined) out['x-forwarded-for'] = forwardedFor
  out['x-forwarded-proto'] = (trustProxy ? incoming['x-forwarded-proto'] : undefined) ?? ctx.protocol
  const host = (trustProxy ? incoming['x-forwarded-host'] : undefined) ?? ctx.host
  if (host !== undefined) out['x-forwarded-host'] = host
  const named = connectionListed(incoming.connection)
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || DROP_REQUEST.has(name) || named.has(name) || name.startsWith('proxy-') || name.startsWith('x-forwarded-')) continue
    out[name] = value
  }
  return out
}

/**
 * Headers the client receives from the upstream's answer. Access-Control-* never: the browser
 * talks to the gateway's origin, so `server.cors` is the only CORS policy it may see.
 */
export function clientResponseHeaders (upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = connectionListed(upstream.connection)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || DROP_RESPONSE.has(name) || named.has(name) || name.startsWith('proxy-') || name.startsWith('access-control-')) continue
    out[name] = value
  }
  return out
}

/**
 * One Vary for an answer that both the gateway (CORS: `Origin`) and the upstream vary on, so that
 * a shared cache keeps the variants of either apart. Tokens compare case-insensitively; `*` wins.
 */
export function mergeVary (ours: string | number | string[] | undefined, theirs: string | string[] | undefined): string | undefined {
  if (theirs === undefined || ours === undefined) {
    const one = theirs ?? ours
    return one === undefined ? undefined : Array.isArray(one) ? one.join(', ') : String(one)
  }
  const tokens = new Map<string, string>()
  for (const value of [ours, theirs]) {
    if (value === undefined) continue
    for (const token of (Array.isArray(value) ? value.join(',') : String(value)).split(',')) {
      const name = token.trim()
      if (name !== '' && !tokens.has(name.toLowerCase())) tokens.set(name.toLowerCase(), name)
    }
  }
  if (tokens.has('*')) return '*'
  return tokens.size === 0 ? undefined : [...tokens.values()].join(', ')
}

const NONE: ReadonlySet<string> = new Set()

// What nearly every client and server sends; a Set per request for these would be waste.
const COMMON = new Map<string, ReadonlySet<string>>([['keep-alive', new Set(['keep-alive'])], ['close', new Set(['close'])]])

function connectionListed (value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE
  const common = typeof value === 'string' ? COMMON.get(value.toLowerCase()) : undefined
  if (common !== undefined) return common
  const text = Array.isArray(value) ? value.join(',') : value ?? ''
  return new Set(text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
}
