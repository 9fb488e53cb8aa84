import { randomBytes } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { jwtClaims } from '../helpers/msal-clients'
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver'
import { needRedis, REDIS_URL } from '../helpers/redis'
import { startTestbed } from '../helpers/testbed'

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const SERVER = 2
const CLIENT = 3
const INTERNAL = 1
const ERROR = 2

const traceparentOf = (value: unknown): { traceId: string, parentId: string, flags: string } => {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(value))
  if (match === null) throw new Error(`not a traceparent: ${String(value)}`)
  return { traceId: match[1]!, parentId: match[2]!, flags: match[3]! }
}

t.test('traces: the client\'s trace continues through the gateway to the upstream, exported over OTLP', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const receiver = await startOtlpReceiver()
  t.teardown(() => receiver.close())
  const withRedis = await needRedis(t)
  const encryptionKey = randomBytes(32).toString('base64')

  const configFor = (protocol: 'http/json' | 'http/protobuf', serviceName: string): ReturnType<typeof resolveConfig> => resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(emulator),
    routes: [{
      prefix: '/rec',
      upstream: `${recorder.url}/base`,
      user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] },
      app: { requireRoles: ['Gateway.Relay'], scopes: [`${SAMPLE}/.default`] }
    }],
    ...(withRedis ? { tokenCache: { redis: { url: REDIS_URL }, encryptionKey } } : {}),
    telemetry: { otlpEndpoint: receiver.url, protocol, serviceName }
  }, { source: 'test', env: {} })
  const config = configFor('http/json', 'gw-traces-test')
  const first = await buildGateway(config)
  const firstUrl = await first.listen({ host: '127.0.0.1', port: 0 })

  t.ok(Object.keys(require.cache).some((file) => file.includes('@opentelemetry/sdk-trace-base')), 'with tracing configured, the SDK is loaded (the check tracing-off.test.ts makes can see it)')

  const user = await kit.signIn()
  const app = await kit.appToken()
  const clientTrace = { traceId: randomBytes(16).toString('hex'), parentId: randomBytes(8).toString('hex') }
  const traceparent = `00-${clientTrace.traceId}-${clientTrace.parentId}-01`
  const call = async (base: string, headers: Record<string, string>, path = '/rec/items?secret=q-value-123'): Promise<number> => {
    const res = await request(`${base}${path}`, { headers })
    await res.body.dump()
    return res.statusCode
  }

  t.equal(await call(firstUrl, { authorization: `Bearer ${user.accessToken}`, traceparent, tracestate: 'vendor=opaque' }), 200, 'first request: OBO from Entra')
  const firstSeen = recorder.requests.at(-1)!
  t.equal(await call(firstUrl, { authorization: `Bearer ${user.accessToken}`, traceparent }), 200, 'second request: from L1')
  t.equal(await call(firstUrl, { authorization: 'Bearer not-a-token', traceparent }), 401, 'an invalid token is refused')
  t.equal(await call(firstUrl, { authorization: `Bearer ${app.accessToken}` }), 200, 'an app without a trace context')
  const appSeen = recorder.requests.at(-1)!

  let l2Seen: typeof firstSeen | undefined
  if (withRedis) {
    // A second instance sharing Redis finds the first one's token there.
    const second = await buildGateway(configFor('http/protobuf', 'gw-traces-test-protobuf'))
    const secondUrl = await second.listen({ host: '127.0.0.1', port: 0 })
    t.equal(await call(secondUrl, { authorization: `Bearer ${user.accessToken}`, traceparent }), 200, 'another instance: from L2')
    l2Seen = recorder.requests.at(-1)
    await second.close()
  }
  // Closing flushes what the batch processor still holds.
  await first.close()
  const spans = receiver.spans()

  await t.test('the upstream receives the client\'s trace id, with the forwarding span as parent, and the tracestate', async (t) => {
    const upstream = traceparentOf(firstSeen.headers.traceparent)
    t.equal(upstream.traceId, clientTrace.traceId)
    t.not(upstream.parentId, clientTrace.parentId, 'the gateway is a hop of its own')
    t.equal(upstream.flags, '01')
    t.equal(firstSeen.headers.tracestate, 'vendor=opaque')
    const forwarding = spans.find((s) => s.spanId === upstream.parentId)
    t.ok(forwarding, 'the upstream\'s parent is an exported span')
    t.match(forwarding, { traceId: clientTrace.traceId, kind: CLIENT, name: 'GET' })
    t.match(forwarding?.attributes, { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': Number(new URL(recorder.url).port), 'http.response.status_code': 200 })
  })

  await t.test('each request is a server span, parented on the client\'s span, with validation, acquisition and forwarding below', async (t) => {
    const forwardedBy = (seen: typeof firstSeen): ReceivedSpan => spans.find((s) => s.spanId === traceparentOf(seen.headers.traceparent).parentId)!
    const forwarding = forwardedBy(firstSeen)
    const server = spans.find((s) => s.spanId === forwarding.parentSpanId)!
    t.match(server, { kind: SERVER, name: 'GET /rec/*', traceId: clientTrace.traceId, parentSpanId: clientTrace.parentId, status: 0 })
    t.match(server.attributes, { 'http.request.method': 'GET', 'http.route': '/rec/*', 'url.path': '/rec/items', 'url.scheme': 'http', 'http.response.status_code': 200 })
    t.equal(server.resource['service.name'], 'gw-traces-test')
    const children = spans.filter((s) => s.parentSpanId === server.spanId)
    t.same(children.map((s) => s.name).sort(), ['GET', 'acquire token', 'validate token'])
    t.match(children.find((s) => s.name === 'validate token'), { kind: INTERNAL, status: 0 })
    t.match(children.find((s) => s.name === 'acquire token')?.attributes, { 'obo.grant': 'on_behalf_of', 'obo.token.source': 'entra' })

    const servers = spans.filter((s) => s.kind === SERVER && s.traceId === clientTrace.traceId)
    const sources = servers.map((srv) => spans.find((s) => s.parentSpanId === srv.spanId && s.name === 'acquire token')?.attributes['obo.token.source'])
    t.same(sources.filter((s) => s !== undefined).sort(), ['entra', 'l1'], 'the JSON-exporting instance: Entra, then L1')

    const appServer = spans.find((s) => s.spanId === forwardedBy(appSeen).parentSpanId)!
    t.equal(appServer.parentSpanId, undefined, 'without a client traceparent the gateway starts the trace')
    t.not(appServer.traceId, clientTrace.traceId)
    t.equal(traceparentOf(appSeen.headers.traceparent).traceId, appServer.traceId, 'and the upstream continues it')
    t.match(spans.find((s) => s.parentSpanId === appServer.spanId && s.name === 'acquire token')?.attributes, { 'obo.grant': 'client_credentials', 'obo.token.source': 'entra' })
  })

  await t.test('a refused token: the validation span says why, the 401 is not a server error', async (t) => {
    const refused = spans.find((s) => s.kind === SERVER && s.attributes['http.response.status_code'] === 401)!
    t.ok(refused)
    t.equal(refused.status, 0)
    t.equal(refused.attributes['error.type'], 'OBO_INVALID_TOKEN')
    const children = spans.filter((s) => s.parentSpanId === refused.spanId)
    t.same(children.map((s) => s.name), ['validate token'], 'nothing acquired or forwarded')
    t.match(children[0], { status: ERROR, attributes: { 'error.type': 'OBO_INVALID_TOKEN', 'obo.token.invalid_reason': 'malformed' } })
  })

  await t.test('http/protobuf exports arrive too, from the second instance, which found the token in L2', { skip: withRedis ? false : 'needs Redis' }, async (t) => {
    const upstream = traceparentOf(l2Seen!.headers.traceparent)
    t.equal(upstream.traceId, clientTrace.traceId)
    const protobuf = receiver.exports.filter((e) => e.contentType === 'application/x-protobuf')
    t.equal(protobuf.length >= 1, true, 'an application/x-protobuf POST to /v1/traces')
    const body = Buffer.concat(protobuf.map((e) => e.body))
    // OTLP protobuf carries ids as raw bytes and names as UTF-8.
    t.ok(body.includes(Buffer.from(clientTrace.traceId, 'hex')), 'the client\'s trace id')
    t.ok(body.includes(Buffer.from(upstream.parentId, 'hex')), 'the forwarding span the upstream saw')
    for (const text of ['acquire token', 'validate token', 'obo.token.source', 'l2', 'gw-traces-test-protobuf']) t.ok(body.includes(Buffer.from(text)), text)
  })

  await t.test('no attribute holds a token, a claim value or the query string', async (t) => {
    const downstreamTokens = [firstSeen, appSeen, ...(l2Seen ? [l2Seen] : [])].map((seen) => String(seen.headers.authorization).replace(/^Bearer /, ''))
    const tokens = [user.accessToken, user.idToken, app.accessToken, ...downstreamTokens]
    const claimValues = new Set<string>()
    for (const token of tokens.filter((tk) => tk.split('.').length === 3)) {
      for (const value of Object.values(jwtClaims(token))) {
        for (const v of Array.isArray(value) ? value : [value]) if (typeof v === 'string' || typeof v === 'number') claimValues.add(String(v))
      }
    }
    t.ok(claimValues.has(DEV_IDS.alice.objectId), 'the check knows the user\'s claims')
    const values = spans.flatMap((s) => [s.name, ...s.allValues])
    t.ok(values.length > 50, `${values.length} attribute values read`)
    const leaks = values.flatMap((value) => [
      ...tokens.filter((token) => value.includes(token.slice(0, 24))).map(() => `a token in ${value}`),
      ...[...claimValues].filter((claim) => value === claim || (claim.length >= 6 && value.includes(claim))).map((claim) => `the claim value ${claim} in ${value}`),
      ...(value.includes('secret') || value.includes('q-value-123') || value.includes('?') ? [`the query string in ${value}`] : [])
    ])
    t.same(leaks, [])
  })
})
