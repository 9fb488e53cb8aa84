import t from 'tap'
import { ConfigError, resolveConfig } from '../../src/config/load'

const minimal = {
  identity: { tenantId: '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10', clientId: '5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11', credential: { clientSecret: 's' } },
  routes: [{ prefix: '/graph', upstream: 'https://graph.example/v1.0', user: { requireScopes: ['access_as_user'], scopes: ['https://graph.example/User.Read'] } }]
}

const telemetryOf = (env: Record<string, string>, telemetry?: Record<string, unknown>): unknown =>
  resolveConfig({ ...minimal, ...(telemetry !== undefined ? { telemetry } : {}) }, { source: 'test', env }).telemetry

function issues (env: Record<string, string>, telemetry?: Record<string, unknown>): string[] {
  try {
    telemetryOf(env, telemetry)
  } catch (err) {
    if (err instanceof ConfigError) return err.issues
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('tracing is off unless an OTLP endpoint is named', async (t) => {
  t.equal(telemetryOf({}), undefined)
  t.equal(telemetryOf({ OTEL_SERVICE_NAME: 'gw', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), undefined, 'other OTEL_* variables alone do not turn it on')
  t.equal(telemetryOf({}, { serviceName: 'gw' }), undefined, 'nor a telemetry block without an endpoint')
})

t.test('OTEL_EXPORTER_OTLP_ENDPOINT is a base URL, the traces endpoint is taken as it is', async (t) => {
  t.same(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), { tracesUrl: 'http://collector:4318/v1/traces', protocol: 'http/protobuf' })
  t.same(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/otlp?tenant=a' }), { tracesUrl: 'http://collector:4318/otlp/v1/traces?tenant=a', protocol: 'http/protobuf' }, 'the signal path goes before the query')
  t.same(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp' }), { tracesUrl: 'https://traces.example/otlp', protocol: 'http/protobuf' })
})

t.test('the protocol: the traces variable, then the general one, then http/protobuf', async (t) => {
  const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }
  t.match(telemetryOf({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), { protocol: 'http/json' })
  t.match(telemetryOf({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }), { protocol: 'http/protobuf' })
  t.match(issues({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), [/^OTEL_EXPORTER_OTLP_PROTOCOL: expected http\/protobuf or http\/json \(grpc is not supported\)/])
})

t.test('the telemetry block wins over the environment', async (t) => {
  t.same(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, { otlpEndpoint: 'http://file:4318', protocol: 'http/json', serviceName: 'edge-gw', sampleRatio: 0.25 }),
    { tracesUrl: 'http://file:4318/v1/traces', protocol: 'http/json', serviceName: 'edge-gw', sampleRatio: 0.25 })
  t.match(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }, { sampleRatio: 0.5 }), { tracesUrl: 'http://env:4318/v1/traces', sampleRatio: 0.5 })
})

t.test('OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none turn it off', async (t) => {
  t.equal(telemetryOf({ OTEL_SDK_DISABLED: 'true' }, { otlpEndpoint: 'http://file:4318' }), undefined)
  t.equal(telemetryOf({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }), undefined)
})

t.test('bad values are config errors naming the key or variable', async (t) => {
  t.match(issues({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), [/^OTEL_EXPORTER_OTLP_ENDPOINT: expected an http\(s\) URL/])
  t.match(issues({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }), [/^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: expected an http\(s\) URL/])
  t.same(issues({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://user:CollectorPw@collector:4318?token=t' }), ['OTEL_EXPORTER_OTLP_ENDPOINT: expected an http(s) URL, got "ftp://***@collector:4318?***"'], 'without the credentials')
  t.match(issues({}, { otlpEndpoint: 'grpc://collector:4317' }), [/^telemetry\.otlpEndpoint: expected an http\(s\) URL/])
  t.match(issues({}, { otlpEndpoint: 'http://c:4318', protocol: 'grpc' }), [/^telemetry\.protocol: expected 'http\/protobuf' or 'http\/json'/])
  t.match(issues({}, { otlpEndpoint: 'http://c:4318', sampleRatio: 2 }), [/^telemetry\.sampleRatio: expected a number from 0 to 1/])
  t.match(issues({}, { otlpEndpoint: 'http://c:4318', headers: {} }), ['telemetry.headers: unknown key'])
})
