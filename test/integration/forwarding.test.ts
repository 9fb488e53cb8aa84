import t from 'tap'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, startEmulator } from '../../src/emulator'
import { prepareTls } from '../../src/emulator/ca'
import { MsalKit } from '../helpers/msal-clients'
import { startSpecialUpstream, startTlsUpstream } from '../helpers/special-upstreams'

const MB = 1024 * 1024

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

interface Exchange { text: string, written: number, closedByServer: boolean }

/**
 * A raw HTTP/1.1 exchange: writes `head`, then up to `bodyBytes` of body as fast as the server
 * takes it, and collects the answer until the server closes the connection or `patienceMs` pass.
 */
async function exchange (port: number, head: string, bodyBytes = 0, patienceMs = 3000): Promise<Exchange> {
  const socket = connect(port, '127.0.0.1')
  let text = ''
  let written = 0
  let closedByServer = false
  socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1') })
  const closed = new Promise<void>((resolve) => {
    socket.on('error', () => { closedByServer = true })
    socket.on('end', () => { closedByServer = true })
    socket.on('close', () => { resolve() })
  })
  socket.write(head)
  const chunk = Buffer.alloc(MB, 0x7a)
  while (written < bodyBytes && !socket.destroyed) {
    const ok = socket.write(chunk)
    written += chunk.length
    if (!ok) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed])
  }
  await Promise.race([closed, sleep(patienceMs)])
  socket.destroy()
  return { text, written, closedByServer }
}

t.test('forwarding: streaming both ways, Expect, TLS to upstreams, timeouts, failures, client aborts, CORS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-fwd-'))
  const emulator = await startEmulator({ dataDir: join(dir, 'emulator') })
  t.teardown(() => emulator.close())
  const kit = new MsalKit(emulator)
  t.teardown(() => kit.close())
  const plain = await startSpecialUpstream()
  t.teardown(() => plain.close())
  const upstreamTls = await prepareTls(join(dir, 'upstream-ca'), ['127.0.0.1'])
  const secure = await startTlsUpstream(upstreamTls)
  t.teardown(() => secure.close())

  const user = { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] }
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0, cors: { origins: ['https://app.contoso.example'] } },
    identity: devGatewayIdentity(emulator),
    routes: [
      { prefix: '/plain', upstream: plain.url, user, timeouts: { headersMs: 500 } },
      { prefix: '/slowbody', upstream: plain.url, user, timeouts: { bodyMs: 300 } },
      { prefix: '/secure', upstream: secure.url, user, tls: { caFile: upstreamTls.caFile } },
      { prefix: '/untrusted', upstream: secure.url, user },
      { prefix: '/refused', upstream: `http://127.0.0.1:${await closedPort()}`, user }
    ]
  }, { source: 'test' })
  const logLines: Array<Record<string, unknown>> = []
  const gateway = await buildGateway(config, { logger: { level: 'info', stream: { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>) } } } })
  t.teardown(() => gateway.close())
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 })
  const client = new Client(gatewayUrl, { bodyTimeout: 60_000, headersTimeout: 60_000 })
  t.teardown(() => client.close())
  const authorization = `Bearer ${(await kit.signIn()).accessToken}`

  await t.test('a 200 MB download and a 200 MB upload stream through with flat memory', async (t) => {
    const size = 200 * MB
    global.gc?.()
    const before = process.memoryUsage().rss
    let peak = before
    const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
    t.teardown(() => clearInterval(sample))

    const down = await client.request({ method: 'GET', path: `/plain/bytes?n=${size}`, headers: { authorization } })
    t.equal(down.statusCode, 200)
    t.equal(down.headers['content-length'], String(size))
    let received = 0
    for await (const chunk of down.body) received += (chunk as Buffer).length
    t.equal(received, size, 'every byte downloaded')

    const hash = createHash('sha256')
    const chunk = Buffer.alloc(MB, 0x62)
    const body = Readable.from((function * () { for (let i = 0; i < 200; i++) { hash.update(chunk); yield chunk } })())
    const up = await client.request({ method: 'POST', path: '/plain/sink', headers: { authorization, 'content-type': 'application/octet-stream' }, body })
    const answer = await up.body.json() as { bytes: number, sha256: string }
    t.equal(up.statusCode, 200)
    t.equal(answer.bytes, size, 'every byte uploaded')
    t.equal(answer.sha256, hash.digest('hex'), 'intact')
    clearInterval(sample)
    const growthMb = (peak - before) / MB
    t.ok(growthMb < 100, `memory grew by ${growthMb.toFixed(0)} MB while 400 MB passed through`)
  })

  await t.test('Expect: 100-continue gets its 100 and the body arrives', async (t) => {
    const answer = await new Promise<{ status: number, body: string, continued: boolean }>((resolve, reject) => {
      let continued = false
      const req = httpRequest(`${gatewayUrl}/plain/sink`, { method: 'POST', headers: { authorization, expect: '100-continue', 'content-type': 'text/plain', 'content-length': '5' } })
      req.on('continue', () => { continued = true; req.end('hello') })
      req.on('response', (res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, continued }))
      })
      req.on('error', reject)
    })
    t.ok(answer.continued, '100 Continue was sent')
    t.equal(answer.status, 200)
    t.match(JSON.parse(answer.body), { bytes: 5 })
    t.equal(JSON.parse(answer.body).headers.expect, undefined, 'Expect is not forwarded')
  })

  await t.test('forwarding headers: the upstream sees who the gateway saw, never what a client claims about itself', async (t) => {
    const claims = {
      'x-forwarded-for': '203.0.113.7, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-prefix': '/admin',
      forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
      'x-real-ip': '6.6.6.6',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin'
    }
    const seenBy = async (url: string): Promise<Record<string, string | undefined>> => {
      const res = await request(`${url}/plain/sink`, { headers: { authorization, ...claims } })
      t.equal(res.statusCode, 200)
      return ((await res.body.json()) as { headers: Record<string, string | undefined> }).headers
    }
    const forwarding = (seen: Record<string, string | undefined>) => [seen['x-forwarded-for'], seen['x-forwarded-proto'], seen['x-forwarded-host']]
    const direct = await seenBy(gatewayUrl)
    t.same(forwarding(direct), ['127.0.0.1', 'http', new URL(gatewayUrl).host], 'trustProxy off: the socket\'s peer, the gateway\'s own protocol and Host')
    for (const name of ['x-forwarded-prefix', 'forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url']) t.equal(direct[name], undefined, `${name} is not forwarded`)

    const behindBalancer = await buildGateway(resolveConfig({
      server: { host: '127.0.0.1', port: 0, trustProxy: true },
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/plain', upstream: plain.url, user }]
    }, { source: 'test' }))
    t.teardown(() => behindBalancer.close())
    const trusted = await seenBy(await behindBalancer.listen({ host: '127.0.0.1', port: 0 }))
    t.same(forwarding(trusted), ['203.0.113.7, 10.0.0.2, 127.0.0.1', 'https', 'evil.example'], 'trustProxy on: the balancer\'s chain plus the balancer itself, its Proto and Host')
    for (const name of ['x-forwarded-prefix', 'forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url']) t.equal(trusted[name], undefined, `${name} is not forwarded`)
  })

  await t.test('Expect: 100-continue only once the request passed: no 100 without a token or on a bad path, and the connection closes', async (t) => {
    const port = Number(new URL(gatewayUrl).port)
    for (const [what, head, status] of [
      ['no token', 'POST /plain/sink HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n', '401'],
      ['a path out of the route', `POST /plain/%2e%2e/admin HTTP/1.1\r\nHost: gw\r\nAuthorization: ${authorization}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n`, '400']
    ] as const) {
      const answer = await exchange(port, head)
      t.notMatch(answer.text, /100 Continue/, `${what}: not invited to send the body`)
      t.match(answer.text, new RegExp(`^HTTP/1\\.1 ${status} .*\\r\\nconnection: close\\r\\n`, 'si'), `${what}: refused, connection: close`)
      t.ok(answer.closedByServer, `${what}: the gateway closed the connection instead of waiting for the body`)
    }
  })

  await t.test('an upload refused before its body was read is not read: 1 GiB without a token closes the connection', async (t) => {
    const declared = 1024 * MB
    const raw = await exchange(Number(new URL(gatewayUrl).port), `POST /plain/sink HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`, declared)
    t.ok(raw.closedByServer, 'the gateway closed the connection')
    t.ok(raw.written < 64 * MB, `after ${raw.written / MB} MiB of the 1024 declared`)

    let pulled = 0
    const body = new Readable({ read () { pulled += MB; this.push(pulled > declared ? null : Buffer.alloc(MB, 0x7a)) } })
    const refused = await request(`${gatewayUrl}/plain/sink`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(declared) }, body })
    t.equal(refused.statusCode, 401, 'an HTTP client still reads the refusal')
    t.equal(refused.headers.connection, 'close')
    t.match(await refused.body.json(), { error: 'missing_token' })

    const small = await request(`${gatewayUrl}/plain/sink`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
    t.equal(small.statusCode, 401)
    t.equal(small.headers.connection, 'keep-alive', 'a small body is skipped and the connection kept for the retry with a token')
    await small.body.dump()
  })

  await t.test('access_token in the query: 400 naming the parameter, nothing forwarded, the value never echoed', async (t) => {
    const before = plain.events.length
    for (const query of ['access_token=own-token-value', 'a=1&Access%5FToken=own-token-value']) {
      const res = await client.request({ method: 'GET', path: `/plain/x?${query}`, headers: { authorization } })
      t.equal(res.statusCode, 400, query)
      const text = await res.body.text()
      t.match(JSON.parse(text), { error: 'invalid_request', error_description: /access_token/, correlation_id: String }, query)
      t.notMatch(text, /own-token-value/, `${query}: the value is not echoed`)
    }
    t.same(plain.events.slice(before), [], 'the upstream got nothing')
  })

  await t.test('HTTPS upstreams are verified: a route CA is trusted, an unknown CA is not', async (t) => {
    const ok = await client.request({ method: 'GET', path: '/secure/x', headers: { authorization } })
    t.equal(ok.statusCode, 200)
    t.same(await ok.body.json(), { method: 'GET', url: '/x' })
    const refused = await client.request({ method: 'GET', path: '/untrusted/x', headers: { authorization } })
    t.equal(refused.statusCode, 502)
    t.match(await refused.body.json(), { error: 'upstream_unreachable' })
  })

  await t.test('timeouts and connection failures become 504 and 502 with the JSON body', async (t) => {
    const slow = await client.request({ method: 'GET', path: '/plain/hang', headers: { authorization } })
    t.equal(slow.statusCode, 504)
    t.match(await slow.body.json(), { error: 'upstream_timeout', correlation_id: String })
    const refused = await client.request({ method: 'GET', path: '/refused/x', headers: { authorization } })
    t.equal(refused.statusCode, 502)
    t.match(await refused.body.json(), { error: 'upstream_unreachable' })
    const reset = await client.request({ method: 'GET', path: '/plain/reset', headers: { authorization } })
    t.equal(reset.statusCode, 502)
    t.match(await reset.body.json(), { error: 'upstream_unreachable' })
  })

  await t.test('small answers arrive whole, large ones stream, and neither gains or loses a header', async (t) => {
    const untyped = await client.request({ method: 'GET', path: '/plain/raw?n=10', headers: { authorization } })
    t.equal(untyped.statusCode, 200)
    t.equal(await untyped.body.text(), 'a'.repeat(10))
    t.equal(untyped.headers['content-type'], undefined, 'no Content-Type invented for a small untyped answer')
    t.equal(untyped.headers['content-length'], '10')
    const bigUntyped = await client.request({ method: 'GET', path: '/plain/raw?n=100000', headers: { authorization } })
    t.equal((await bigUntyped.body.arrayBuffer()).byteLength, 100_000)
    t.equal(bigUntyped.headers['content-type'], undefined)
    const large = await client.request({ method: 'GET', path: '/plain/bytes?n=100000', headers: { authorization } })
    t.equal(large.headers['content-length'], '100000')
    t.equal((await large.body.arrayBuffer()).byteLength, 100_000)
    const noContent = await client.request({ method: 'GET', path: '/plain/status?code=204', headers: { authorization } })
    t.equal(noContent.statusCode, 204)
    t.equal(await noContent.body.text(), '')
    t.equal(noContent.headers['content-type'], undefined)
    const head = await client.request({ method: 'HEAD', path: '/plain/bytes?n=5000', headers: { authorization } })
    t.equal(head.statusCode, 200)
    t.equal(head.headers['content-length'], '5000', 'HEAD keeps the length the upstream announced')
    t.equal(head.headers['content-type'], 'application/octet-stream')
    t.equal(await head.body.text(), '')
  })

  await t.test('an answer cut short: before anything was sent it is a 504 or 502, after the headers the client sees the break', async (t) => {
    const stalled = await client.request({ method: 'GET', path: '/slowbody/half?n=1000&then=hang', headers: { authorization } })
    t.equal(stalled.statusCode, 504, 'a small answer whose body stalls is a timeout')
    t.match(await stalled.body.json(), { error: 'upstream_timeout' })
    const reset = await client.request({ method: 'GET', path: '/plain/half?n=1000&then=reset', headers: { authorization } })
    t.equal(reset.statusCode, 502)
    t.match(await reset.body.json(), { error: 'upstream_unreachable' })
    const streamed = await client.request({ method: 'GET', path: '/slowbody/half?n=200000&then=hang', headers: { authorization } })
    t.equal(streamed.statusCode, 200, 'a large answer streams: its headers are already on their way')
    await t.rejects(streamed.body.arrayBuffer(), 'and the client sees the body end early')
  })

  await t.test('a client that goes away cancels the upstream request', async (t) => {
    const before = plain.events.length
    const logsBefore = logLines.length
    const abort = new AbortController()
    const pending = client.request({ method: 'GET', path: '/plain/hang', headers: { authorization }, signal: abort.signal }).catch((err: Error) => err)
    for (let i = 0; i < 50 && !plain.events.slice(before).some((e) => e.startsWith('request GET /hang')); i++) await sleep(20)
    abort.abort()
    t.type(await pending, Error)
    for (let i = 0; i < 50 && !plain.events.slice(before).includes('close'); i++) await sleep(20)
    t.ok(plain.events.slice(before).includes('close'), `upstream saw: ${plain.events.slice(before).join(', ')}`)
    // Recorded as the client's doing (nginx's 499), not as a gateway failure.
    const logged = logLines.slice(logsBefore)
    t.match(logged, [{ msg: 'request', status: 499, path: '/plain/hang' }], 'one request line, status 499')
    t.notOk(logged.some((l) => (l.level as number) >= 50), 'nothing logged as an error')
    const metrics = await (await client.request({ method: 'GET', path: '/metrics' })).body.text()
    t.match(metrics, /obo_gateway_requests_total\{route="\/plain",method="GET",status="499"\} 1/)
    t.notMatch(metrics, /status="500"/)
  })

  await t.test('a client that goes away in the middle of a streamed answer cancels it too', async (t) => {
    const before = plain.events.length
    const abort = new AbortController()
    const res = await client.request({ method: 'GET', path: `/plain/bytes?n=${100 * MB}`, headers: { authorization }, signal: abort.signal })
    t.equal(res.statusCode, 200)
    await once(res.body, 'data') // one chunk, then the client hangs up
    abort.abort()
    for (let i = 0; i < 100 && !plain.events.slice(before).includes('close'); i++) await sleep(20)
    const seen = plain.events.slice(before)
    t.ok(seen.includes('close') && !seen.includes('finished'), `the upstream's answer was cut off, not finished: ${seen.join(', ')}`)
  })

  await t.test('CORS: preflight without a token; challenges and the correlation id readable by the browser', async (t) => {
    const origin = 'https://app.contoso.example'
    const preflight = await client.request({ method: 'OPTIONS', path: '/plain/x', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } })
    t.equal(preflight.statusCode, 204)
    t.equal(preflight.headers['access-control-allow-origin'], origin)
    t.match(preflight.headers['access-control-allow-methods'], /POST/)
    t.match(preflight.headers['access-control-allow-headers'], /authorization/)
    t.equal(preflight.headers['access-control-allow-credentials'], undefined, 'credentials are off by default')
    await preflight.body.dump()

    const denied = await client.request({ method: 'GET', path: '/plain/x', headers: { origin } })
    t.equal(denied.statusCode, 401)
    t.equal(denied.headers['access-control-allow-origin'], origin)
    t.match(denied.headers['access-control-expose-headers'], /WWW-Authenticate/)
    t.match(denied.headers['access-control-expose-headers'], /client-request-id/)
    await denied.body.dump()

    const stranger = await client.request({ method: 'GET', path: '/plain/x', headers: { origin: 'https://evil.example', authorization } })
    t.equal(stranger.headers['access-control-allow-origin'], undefined, 'other origins get no CORS grant')
    await stranger.body.dump()
  })

  await t.test('CORS: the upstream\'s Access-Control-* never reach the browser, its Vary joins the gateway\'s', async (t) => {
    const permissive = new URLSearchParams({
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': '*',
      'access-control-allow-methods': 'DELETE',
      vary: 'x-tenant, origin'
    })
    const path = `/plain/with-headers?${permissive.toString()}`
    const stranger = await client.request({ method: 'GET', path, headers: { origin: 'https://evil.example', authorization } })
    t.equal(stranger.statusCode, 200)
    t.equal(stranger.headers['access-control-allow-origin'], undefined, 'another origin: no CORS grant')
    t.equal(stranger.headers['access-control-allow-credentials'], undefined)
    t.equal(stranger.headers['access-control-allow-methods'], undefined)
    t.equal(stranger.headers['access-control-expose-headers'], 'WWW-Authenticate, client-request-id', 'the gateway\'s own list, which grants nothing without an allowed origin')
    t.equal(stranger.headers.vary, 'Origin, x-tenant', 'both the gateway\'s and the upstream\'s Vary, each once')
    await stranger.body.dump()

    const origin = 'https://app.contoso.example'
    const allowed = await client.request({ method: 'GET', path, headers: { origin, authorization } })
    t.equal(allowed.headers['access-control-allow-origin'], origin, 'the gateway\'s grant, for this origin only')
    t.equal(allowed.headers['access-control-allow-credentials'], undefined, 'credentials stay off')
    t.equal(allowed.headers['access-control-expose-headers'], 'WWW-Authenticate, client-request-id')
    t.equal(allowed.headers['access-control-allow-methods'], undefined)
    t.equal(allowed.headers.vary, 'Origin, x-tenant')
    await allowed.body.dump()
  })
})
