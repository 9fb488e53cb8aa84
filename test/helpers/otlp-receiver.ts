import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** An OTLP/JSON attribute value (only the kinds the SDK writes). */
export interface OtlpValue {
  stringValue?: string
  intValue?: number | string
  doubleValue?: number
  boolValue?: boolean
  arrayValue?: { values: OtlpValue[] }
}
export interface OtlpAttribute { key: string, value: OtlpValue }

export interface ReceivedSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  /** OTLP enum: 1 internal, 2 server, 3 client. */
  kind: number
  attributes: Record<string, string | number | boolean>
  /** OTLP enum: 0 unset, 1 ok, 2 error. */
  status: number
  resource: Record<string, string | number | boolean>
  /** Every attribute value of the span, its events and its resource, as text: what a leak check reads. */
  allValues: string[]
}

export interface OtlpExport { path: string, contentType: string, body: Buffer }

export interface OtlpReceiver {
  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT or telemetry.otlpEndpoint take it. */
  url: string
  exports: OtlpExport[]
  /** Spans of every OTLP/JSON export received so far. */
  spans: () => ReceivedSpan[]
  /** Resolves once `predicate` holds for the spans received (checked on each export). */
  waitFor: (predicate: (spans: ReceivedSpan[]) => boolean) => Promise<ReceivedSpan[]>
  close: () => Promise<void>
}

/** A real OTLP/HTTP traces receiver on loopback: it keeps every export and answers as a collector does. */
export async function startOtlpReceiver (): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = []
  const waiters: Array<() => void> = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      const contentType = String(req.headers['content-type'] ?? '')
      exports.push({ path: req.url, contentType, body: Buffer.concat(chunks) })
      if (contentType.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
      for (const wake of waiters.splice(0)) wake()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const spans = (): ReceivedSpan[] => exports.filter((e) => e.contentType.includes('json')).flatMap((e) => decodeJson(e.body))
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans,
    waitFor: async (predicate) => {
      while (!predicate(spans())) await new Promise<void>((resolve) => waiters.push(resolve))
      return spans()
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

interface JsonExport {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] }
    scopeSpans?: Array<{ spans?: Array<{ traceId: string, spanId: string, parentSpanId?: string, name: string, kind: number, attributes?: OtlpAttribute[], status?: { code?: number }, events?: Array<{ attributes?: OtlpAttribute[] }> }> }>
  }>
}

function decodeJson (body: Buffer): ReceivedSpan[] {
  const parsed = JSON.parse(body.toString('utf8')) as JsonExport
  const out: ReceivedSpan[] = []
  for (const rs of parsed.resourceSpans ?? []) {
    const resourceAttributes = rs.resource?.attributes ?? []
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        const all = [...resourceAttributes, ...(span.attributes ?? []), ...(span.events ?? []).flatMap((e) => e.attributes ?? [])]
        out.push({
          traceId: span.traceId,
          spanId: span.spanId,
          ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
          name: span.name,
          kind: span.kind,
          attributes: plain(span.attributes ?? []),
          status: span.status?.code ?? 0,
          resource: plain(resourceAttributes),
          allValues: all.flatMap((a) => texts(a.value))
        })
      }
    }
  }
  return out
}

function plain (attributes: OtlpAttribute[]): Record<string, string | number | boolean> {
  return Object.fromEntries(attributes.map((a) => [a.key, scalar(a.value)]))
}

function scalar (value: OtlpValue): string | number | boolean {
  if (value.stringValue !== undefined) return value.stringValue
  if (value.intValue !== undefined) return Number(value.intValue)
  if (value.doubleValue !== undefined) return value.doubleValue
  if (value.boolValue !== undefined) return value.boolValue
  return JSON.stringify(value)
}

function texts (value: OtlpValue): string[] {
  if (value.arrayValue !== undefined) return value.arrayValue.values.flatMap(texts)
  return [String(scalar(value))]
}
