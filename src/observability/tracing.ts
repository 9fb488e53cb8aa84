import type { IncomingHttpHeaders } from 'node:http'
import type { TelemetryConfig } from '../config/types'
import type { DownstreamCallSteps } from '../forwarding/downstream-call'
import type { Grant, RequestTrace, TraceableSteps, Tracing, TracingOptions } from './tracing-types'

/**
 * Starts tracing. Nothing else here loads the OpenTelemetry SDK: it is imported only now, so a
 * gateway without tracing neither loads it nor pays for it beyond one `null` check per step.
 */
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
