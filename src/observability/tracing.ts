import type { IncomingHttpHeaders } from 'node:http'
import type { DownstreamToken } from '../acquisition/token-acquirer'
import type { TelemetryConfig } from '../config/types'
import type { DownstreamCallSteps } from '../forwarding/downstream-call'
import type { UpstreamResponse } from '../forwarding/forwarder'

/**
 * The gateway's traces, as the rest of the code sees them. Nothing here loads the OpenTelemetry
 * SDK: {@link startTracing} imports it only when tracing is configured, so a gateway without
 * tracing neither loads it nor pays for it beyond one `null` check per step.
 */
export interface Tracing {
  /** Starts the server span of one proxied request, continuing the client's traceparent/tracestate. */
  startRequest: (request: TracedRequest) => RequestTrace
  /** Exports what is still buffered (bounded in time) and stops. */
  shutdown: () => Promise<void>
}

export interface TracedRequest {
  method: string
  /** The route pattern (`/api/*`), never the raw URL. */
  route: string
  /** The path without its query string. */
  path: string
  scheme: string
  headers: IncomingHttpHeaders
}

/** The spans of one request, children of its server span. */
export interface RequestTrace {
  validation: <T>(run: () => Promise<T>) => Promise<T>
  acquisition: (grant: Grant, claimsChallenge: boolean, run: () => Promise<DownstreamToken>) => Promise<DownstreamToken>
  /** `run` gets the headers to send: the client's with the trace context replaced by the forwarding span's. */
  forwarding: (upstream: URL, method: string, resendCount: number, headers: IncomingHttpHeaders, run: (headers: IncomingHttpHeaders) => Promise<UpstreamResponse>) => Promise<UpstreamResponse>
  /** Ends the server span; `errorType` is the gateway error code, when there was one. */
  end: (status: number, errorType?: string) => void
}

export type Grant = 'on_behalf_of' | 'client_credentials'

/** The downstream steps of a proxied request, whose `send` also takes the headers to forward. */
export interface TraceableSteps extends DownstreamCallSteps {
  send: (accessToken: string, body: Buffer | import('node:stream').Readable | undefined, headers?: IncomingHttpHeaders) => Promise<UpstreamResponse>
}

export interface TracingOptions {
  /** Called when the collector refuses or cannot be reached (rate-limited by the caller). */
  onExportError?: (message: string) => void
}

export async function startTracing (config: TelemetryConfig, options: TracingOptions = {}): Promise<Tracing> {
  const loaded = await import('./tracing-sdk.js')
  // Node sees a CommonJS module's exports as named exports; ts-node (under tap) only as its default.
  const { createTracing } = 'createTracing' in loaded ? loaded : (loaded as { default: typeof loaded }).default
  return await createTracing(config, options)
}

/** The acquisition and forwarding steps of one request, each in its span. */
export function tracedSteps (trace: RequestTrace, grant: Grant, upstream: URL, method: string, headers: IncomingHttpHeaders, steps: TraceableSteps): DownstreamCallSteps {
  let sent = 0
  return {
    acquire: (claims) => trace.acquisition(grant, claims !== undefined, () => steps.acquire(claims)),
    evict: steps.evict,
    send: (accessToken, body) => trace.forwarding(upstream, method, sent++, headers, (traced) => steps.send(accessToken, body, traced))
  }
}
