import type { IncomingHttpHeaders } from 'node:http'
import type { DownstreamToken } from '../acquisition/token-acquirer'
import type { DownstreamCallSteps } from '../forwarding/downstream-call'
import type { UpstreamResponse } from '../forwarding/forwarder'

/**
 * The gateway's traces, as the rest of the code sees them (src/observability/tracing-sdk.ts is the
 * OpenTelemetry implementation, loaded only when tracing is configured).
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
