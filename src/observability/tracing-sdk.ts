import type { IncomingHttpHeaders } from 'node:http'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api'
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { DownstreamToken } from '../acquisition/token-acquirer'
import type { TelemetryConfig } from '../config/types'
import type { UpstreamResponse } from '../forwarding/forwarder'
import { GatewayError, InvalidTokenError } from '../errors'
import type { Grant, RequestTrace, TracedRequest, Tracing, TracingOptions } from './tracing-types'

const DEFAULT_SERVICE_NAME = 'obo-gateway'
/** Spans still buffered at shutdown get this long to reach the collector. */
const SHUTDOWN_TIMEOUT_MS = 3000

/**
 * The OpenTelemetry SDK behind {@link Tracing}: a private tracer provider (no global registration,
 * no context manager: every span's parent is passed explicitly), a batch processor and an OTLP/HTTP
 * exporter. Attributes name routes, methods, statuses, cache layers and error codes only: never a
 * token, a claim value, a header value or a query string.
 */
export async function createTracing (config: TelemetryConfig, options: TracingOptions): Promise<Tracing> {
  const exporter = await otlpExporter(config)
  const provider = new BasicTracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME }))
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(config.serviceName === undefined ? null : resourceFromAttributes({ 'service.name': config.serviceName })),
    ...(config.sampleRatio !== undefined ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }) } : {}),
    spanProcessors: [new BatchSpanProcessor(options.onExportError === undefined ? exporter : reporting(exporter, options.onExportError))]
  })
  const tracer = provider.getTracer('obo-gateway')
  const propagator = new W3CTraceContextPropagator()

  return {
    startRequest: (request) => new OtelRequestTrace(tracer, propagator, request),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        provider.shutdown().catch(() => {}),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS) })
      ])
      clearTimeout(timer)
    }
  }
}

async function otlpExporter (config: TelemetryConfig): Promise<SpanExporter> {
  const { OTLPTraceExporter } = config.protocol === 'http/json'
    ? await import('@opentelemetry/exporter-trace-otlp-http')
    : await import('@opentelemetry/exporter-trace-otlp-proto')
  return new OTLPTraceExporter({ url: config.tracesUrl })
}

/** The exporter, telling the gateway's log when a batch could not be delivered. */
function reporting (exporter: SpanExporter, onExportError: (message: string) => void): SpanExporter {
  return {
    export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) onExportError(result.error?.message ?? 'export failed')
        done(result)
      })
    },
    shutdown: () => exporter.shutdown(),
    ...(exporter.forceFlush !== undefined ? { forceFlush: () => exporter.forceFlush!() } : {})
  }
}

class OtelRequestTrace implements RequestTrace {
  private readonly span: Span
  private readonly context: Context
  private ended = false

  constructor (private readonly tracer: Tracer, private readonly propagator: W3CTraceContextPropagator, request: TracedRequest) {
    const parent = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter)
    this.span = tracer.startSpan(`${request.method} ${request.route}`, {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': request.method,
        'http.route': request.route,
        'url.path': request.path,
        'url.scheme': request.scheme
      }
    }, parent)
    this.context = trace.setSpan(parent, this.span)
  }

  async validation<T> (run: () => Promise<T>): Promise<T> {
    const span = this.tracer.startSpan('validate token', { kind: SpanKind.INTERNAL }, this.context)
    try {
      return await run()
    } catch (err) {
      failed(span, err)
      throw err
    } finally {
      span.end()
    }
  }

  async acquisition (grant: Grant, claimsChallenge: boolean, run: () => Promise<DownstreamToken>): Promise<DownstreamToken> {
    const attributes: Attributes = { 'obo.grant': grant }
    if (claimsChallenge) attributes['obo.claims_challenge'] = true
    const span = this.tracer.startSpan('acquire token', { kind: SpanKind.INTERNAL, attributes }, this.context)
    try {
      const token = await run()
      // 'uncached': Entra answered with a token too short-lived to keep.
      span.setAttribute('obo.token.source', token.source === 'uncached' ? 'entra' : token.source)
      return token
    } catch (err) {
      failed(span, err)
      throw err
    } finally {
      span.end()
    }
  }

  async forwarding (upstream: URL, method: string, resendCount: number, headers: IncomingHttpHeaders, run: (headers: IncomingHttpHeaders) => Promise<UpstreamResponse>): Promise<UpstreamResponse> {
    const attributes: Attributes = {
      'http.request.method': method,
      'server.address': upstream.hostname,
      'server.port': Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80)),
      'url.scheme': upstream.protocol.slice(0, -1)
    }
    if (resendCount > 0) attributes['http.request.resend_count'] = resendCount
    const span = this.tracer.startSpan(method, { kind: SpanKind.CLIENT, attributes }, this.context)
    // The client's trace context is replaced, never passed on beside ours; an invalid one is dropped.
    const outgoing: IncomingHttpHeaders = { ...headers }
    delete outgoing.traceparent
    delete outgoing.tracestate
    this.propagator.inject(trace.setSpan(this.context, span), outgoing, defaultTextMapSetter)
    try {
      const response = await run(outgoing)
      span.setAttribute('http.response.status_code', response.status)
      if (response.status >= 500) {
        span.setAttribute('error.type', String(response.status))
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      return response
    } catch (err) {
      failed(span, err)
      throw err
    } finally {
      span.end()
    }
  }

  end (status: number, errorType?: string): void {
    if (this.ended) return
    this.ended = true
    this.span.setAttribute('http.response.status_code', status)
    if (errorType !== undefined) this.span.setAttribute('error.type', errorType)
    // For a server, a 4xx is the client's mistake, not a failure of the gateway.
    if (status >= 500) {
      if (errorType === undefined) this.span.setAttribute('error.type', String(status))
      this.span.setStatus({ code: SpanStatusCode.ERROR })
    }
    this.span.end()
  }
}

/** Error codes only: messages may quote configuration, and nothing from a request belongs in a span. */
function failed (span: Span, err: unknown): void {
  span.setAttribute('error.type', err instanceof GatewayError ? err.code : 'internal')
  if (err instanceof InvalidTokenError) span.setAttribute('obo.token.invalid_reason', err.reason)
  span.setStatus({ code: SpanStatusCode.ERROR })
}
