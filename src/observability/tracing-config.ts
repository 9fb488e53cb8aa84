import type { RawConfig } from '../config/schema'
import { withoutCredentials } from '../config/shown-value'
import type { TelemetryConfig } from '../config/types'

type OtlpProtocol = TelemetryConfig['protocol']
type RawTelemetry = RawConfig['telemetry']

type Env = Record<string, string | undefined>

const PROTOCOLS: readonly string[] = ['http/protobuf', 'http/json']

/**
 * Tracing is on when the config file or the standard OpenTelemetry variables name an OTLP endpoint;
 * what the file says wins, as for the Azure variables. Only what decides whether and how to export
 * is read here; the SDK reads the other OTEL_* variables (headers, timeout, batch, sampler) itself.
 */
export function resolveTelemetry (raw: RawTelemetry, env: Env, issues: string[]): TelemetryConfig | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined
  const tracesUrl = tracesUrlFrom(raw, env, issues)
  if (tracesUrl === undefined) return undefined
  const protocol = raw?.protocol ?? protocolFromEnv(env, issues)
  if (protocol === undefined) return undefined
  return {
    tracesUrl,
    protocol,
    ...(raw?.serviceName !== undefined ? { serviceName: raw.serviceName } : {}),
    ...(raw?.sampleRatio !== undefined ? { sampleRatio: raw.sampleRatio } : {})
  }
}

function tracesUrlFrom (raw: RawTelemetry, env: Env, issues: string[]): string | undefined {
  if (raw?.otlpEndpoint !== undefined) return signalUrl(raw.otlpEndpoint)
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (traces) return checkedUrl(traces, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', issues)
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  if (!base) return undefined
  const checked = checkedUrl(base, 'OTEL_EXPORTER_OTLP_ENDPOINT', issues)
  return checked === undefined ? undefined : signalUrl(checked)
}

/** The OTLP/HTTP rule for a base endpoint (a URL already checked): the signal's path is appended to its path, before any query. */
function signalUrl (base: string): string {
  const url = new URL(base)
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/traces`
  return url.href
}

function checkedUrl (value: string, variable: string, issues: string[]): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    issues.push(`${variable}: expected an http(s) URL, got ${JSON.stringify(withoutCredentials(value)).slice(0, 60)}`)
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    issues.push(`${variable}: expected an http(s) URL, got ${JSON.stringify(withoutCredentials(value)).slice(0, 60)}`)
    return undefined
  }
  return value
}

function protocolFromEnv (env: Env, issues: string[]): OtlpProtocol | undefined {
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = env[variable]?.trim()
    if (!value) continue
    if (PROTOCOLS.includes(value)) return value as OtlpProtocol
    issues.push(`${variable}: expected http/protobuf or http/json${value === 'grpc' ? ' (grpc is not supported)' : ''}, got ${JSON.stringify(value).slice(0, 40)}`)
    return undefined
  }
  // The OTLP specification's default.
  return 'http/protobuf'
}
