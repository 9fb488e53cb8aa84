import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { createServer as createHttpsServer } from 'node:https'
import { dirname } from 'node:path'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { Client, Pool, request as undiciRequest, type Dispatcher } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, type RunningEmulator } from '../../src/emulator'
import { prepareTls } from '../../src/emulator/ca'
import { jwtClaims } from '../helpers/msal-clients'
import { needRedis, REDIS_URL } from '../helpers/redis'
import { startTestbed } from '../helpers/testbed'

// Regression tests for the defects a hostile probe found (issue 14), one table per defect.

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const user = { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] }

interface Answer { status: number, headers: Record<string, unknown>, body: Record<string, unknown> }

async function setup (t: Test, server: Record<string, unknown> = {}, logLines?: Array<Record<string, unknown>>) {
  const bed = await startTestbed(t)
  const config = resolveConfig({
    // Gateway, emulator and clients share this process: its event loop stalls say nothing of the gateway's.
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 }, ...server },
    identity: devGatewayIdentity(bed.emulator),
    routes: [{ prefix: '/api', upstream: bed.recorder.url, user }]
  }, { source: 'test' })
  const logger = logLines === undefined ? false : { level: 'info', stream: { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const gateway = await buildGateway(config, { logger })
  t.teardown(() => gateway.close())
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 })
  const client = new Client(url)
  t.teardown(() => client.close())
  const token = (await bed.kit.signIn()).accessToken
  const request = async (options: { path?: string, method?: string, headers?: Record<string, string> | string[], body?: string } = {}): Promise<Answer> => {
    const res = await client.request({
      method: (options.method ?? 'GET') as 'GET',
      path: options.path ?? '/api/x',
      headers: options.headers ?? { authorization: `Bearer ${token}` },
      ...(options.body !== undefined ? { body: options.body } : {})
    })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
  }
  return { ...bed, gateway, url, token, request }
}

/** What a raw socket receives for `head` (a request line and headers, CRLFs included). */
async function rawExchange (url: string, head: string): Promise<string> {
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.write(head)
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('latin1')
}

function errorBody (answer: Answer, error: string, t: Test): void {
  t.equal(answer.body.error, error)
  t.type(answer.body.error_description, 'string')
  t.type(answer.body.correlation_id, 'string')
}

t.test('1. header count and size are bounded; the gateway\'s own headers reach the upstream', async (t) => {
  const { request, recorder, token, url } = await setup(t)
  const padded = (n: number): Record<string, string> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    for (let i = 0; i < n; i++) headers[`x${i.toString(36)}`] = '1'
    return headers
  }
  const cases: Array<{ name: string, headers: Record<string, string>, status: number }> = [
    { name: '1,500 small headers (~13 KB)', headers: padded(1500), status: 431 },
    { name: '101 fields', headers: padded(100), status: 431 },
    { name: '90 fields', headers: padded(89), status: 200 }
  ]
  for (const c of cases) {
    const before = recorder.requests.length
    const answer = await request({ headers: c.headers })
    t.equal(answer.status, c.status, c.name)
    if (c.status === 431) {
      errorBody(answer, 'headers_too_large', t)
      t.equal(recorder.requests.length, before, `${c.name}: nothing reached the upstream`)
    } else {
      const seen = recorder.requests.at(-1)?.headers
      t.equal(jwtClaims(String(seen?.authorization).slice(7)).aud, DEV_IDS.sampleApi.clientId, `${c.name}: the upstream saw the gateway's token`)
      t.ok(seen?.['x-forwarded-for'] !== undefined && seen['client-request-id'] !== undefined, `${c.name}: and its forwarding headers`)
    }
  }
  // Past Node's parser limit: no request exists yet, and the answer is still the JSON error body.
  for (const size of [17 * 1024, 64 * 1024]) {
    const raw = await rawExchange(url, `GET /api/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\nx-huge: ${'h'.repeat(size)}\r\n\r\n`)
    t.match(raw, /^HTTP\/1\.1 431 /, `a ${size}-byte header: 431`)
    t.match(raw, /"error":"headers_too_large"/, 'with the JSON error body')
  }
  t.equal(recorder.requests.length, 1, 'only the request within bounds reached the upstream')
})

t.test('8. two Authorization headers are refused with 400, whatever their order or spelling', async (t) => {
  const { request, recorder, token } = await setup(t)
  const good = `Bearer ${token}`
  const cases: Array<{ name: string, headers: string[] }> = [
    { name: 'the same token twice', headers: ['authorization', good, 'authorization', good] },
    { name: 'a valid token first, garbage last', headers: ['Authorization', good, 'authorization', 'Bearer x.y.z'] },
    { name: 'garbage first, a valid token last', headers: ['AUTHORIZATION', 'Basic dXNlcjpwdw==', 'Authorization', good] }
  ]
  for (const c of cases) {
    const answer = await request({ headers: c.headers })
    t.equal(answer.status, 400, c.name)
    errorBody(answer, 'invalid_request', t)
    t.match(String(answer.headers['www-authenticate']), /error="invalid_request"/)
  }
  t.equal(recorder.requests.length, 0, 'nothing reached the upstream')
  t.equal((await request()).status, 200, 'one Authorization header passes')
})

t.test('5. dot segments hidden behind ;parameters or double encoding are refused with 400 bad_path', async (t) => {
  const { request, recorder } = await setup(t)
  const refused = ['/api/..;/admin', '/api/.;/admin', '/api/%2e;/admin', '/api/..%3b/admin', '/api/%2e%2e;jsessionid=1/admin',
    '/api/%252e%252e/admin', '/api/a/%252e%252e%252fadmin', '/api/%25252e%25252e/admin', '/api/..;x=y/admin', '/api/x/..%3B/y']
  for (const path of refused) {
    const answer = await request({ path })
    t.equal(answer.status, 400, `${path}: ${JSON.stringify(answer.body)}`)
    t.equal(answer.body.error, 'bad_path', `${path}: bad_path`)
  }
  t.equal(recorder.requests.length, 0, 'none reached the upstream')
  for (const path of ['/api/a;b/c', '/api/v1.0/items;type=x', '/api/100%25', '/api/...;/x', '/api/%2e%2e.x']) {
    t.equal((await request({ path })).status, 200, `${path} is an ordinary path`)
  }
})

t.test('7. an aborted buffered upload is logged like any other abort: one 499 line, no error with a stack', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const { url, token, recorder } = await setup(t, {}, logLines)
  const { port } = new URL(url)
  const aborts = 20
  for (let i = 0; i < aborts; i++) {
    const socket = connect(Number(port), '127.0.0.1')
    // Within the replay limit (64 KiB), so the gateway reads it into memory before forwarding.
    socket.write(`POST /api/upload HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: text/plain\r\ncontent-length: 4000\r\n\r\n${'a'.repeat(100)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    socket.destroy()
    await new Promise((resolve) => socket.once('close', resolve))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  const requestLines = logLines.filter((l) => l.msg === 'request' && l.route === '/api')
  t.equal(requestLines.filter((l) => l.status === 499).length, aborts, 'every abort counted as 499')
  const errors = logLines.filter((l) => Number(l.level) >= 50)
  t.same(errors.map((l) => l.msg), [], 'no error line')
  t.notOk(logLines.some((l) => JSON.stringify(l).includes('"stack"')), 'no stack in any line')
  t.equal(recorder.requests.length, 0, 'nothing was forwarded')
})

t.test('6. one token has one spelling: signature variants in the unused base64url bits are refused, one OBO call', async (t) => {
  const { request, token, emulator } = await setup(t)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const [head, payload, signature = ''] = token.split('.')
  t.equal(signature.length % 4, 2, 'an RS256 signature ends in a character with 4 unused bits')
  const used = alphabet.indexOf(signature.at(-1) ?? '') & 0b110000
  const spellings = Array.from({ length: 16 }, (_, low) => `${head}.${payload}.${signature.slice(0, -1)}${alphabet[used | low]}`)
  t.ok(spellings.every((s) => Buffer.from(s.split('.')[2] ?? '', 'base64url').equals(Buffer.from(signature, 'base64url'))), 'all 16 decode to the same signature')
  const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length
  const before = oboCalls()
  const statuses = []
  for (const spelling of spellings) statuses.push((await request({ headers: { authorization: `Bearer ${spelling}` } })).status)
  t.same(statuses, spellings.map((s) => s === token ? 200 : 401), 'only the canonical spelling passes')
  t.equal(oboCalls() - before, 1, 'one OBO call')
})

/** A TCP proxy to Redis that holds every chunk, both ways, for `delayMs`: a far-away Redis on loopback. */
async function slowRedis (t: Test, delayMs: number): Promise<string> {
  const target = new URL(REDIS_URL)
  const server = createServer((client) => {
    const redis = connect(Number(target.port || 6379), target.hostname)
    const relay = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => { setTimeout(() => { if (!to.destroyed) to.write(chunk) }, delayMs) })
      from.on('close', () => { setTimeout(() => to.destroy(), delayMs) })
      from.on('error', () => {})
    }
    relay(client, redis)
    relay(redis, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `redis://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('4. cross-instance single flight: one Entra call per key across 3 instances, whatever the timing', async (t) => {
  if (!await needRedis(t)) return
  const bed = await startTestbed(t)
  const { emulator, kit, recorder } = bed
  // Instances 2 and 3 see Redis 100 and 130 ms away each way: their L2 read misses while instance 1
  // is still asking Entra (slowed to 150 ms), and their lock attempt comes after instance 1 released
  // its lock, the window in which a second Entra call used to slip through.
  const redisUrls = [REDIS_URL, await slowRedis(t, 100), await slowRedis(t, 130)]
  const gateways = await Promise.all(redisUrls.map(async (url) => {
    const config = resolveConfig({
      server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/api', upstream: recorder.url, user }],
      tokenCache: { redis: { url, commandTimeoutMs: 5000 }, encryptionKey: 'reliability-test-key-0123456789', lockMs: 5000 }
    }, { source: 'test' })
    const gateway = await buildGateway(config)
    t.teardown(() => gateway.close())
    return new Pool(await gateway.listen({ host: '127.0.0.1', port: 0 }), { connections: 64 })
  }))
  t.teardown(() => Promise.all(gateways.map((c) => c.close())))
  const alice = jwtClaims((await kit.signIn()).accessToken)
  const userToken = (): string => {
    const now = Math.floor(Date.now() / 1000)
    const oid = randomUUID()
    return emulator.keys.sign(DEV_IDS.tenantId, { ...alice, oid, sub: oid, iat: now, nbf: now - 5, exp: now + 3600, uti: randomUUID() })
  }
  const call = async (client: Pool, token: string): Promise<number> => {
    const res = await client.request({ method: 'GET', path: '/api/x', headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    return res.statusCode
  }
  const warm = userToken()
  for (const client of gateways) t.equal(await call(client, warm), 200, 'each instance has its keys')

  emulator.failures.inject({ kind: 'slow', grant: 'obo', delayMs: 150 })
  const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length
  const users = Array.from({ length: 30 }, userToken)
  const before = oboCalls()
  // 90 requests in flight at once: every user on all three instances.
  const statuses = await Promise.all(users.flatMap((token) => gateways.map(async (client) => await call(client, token))))
  t.equal(statuses.filter((s) => s === 200).length, 90, 'every request answered 200')
  const calls = oboCalls() - before
  t.equal(calls, users.length, `${users.length} users, ${calls} OBO calls`)
})

type JwksMode = 'ok' | 'fail' | 'hang'

/**
 * The emulator behind a TLS front (same CA) whose JWKS endpoint can be made to fail or hang, as
 * Entra's did during the probe; everything else is passed through.
 */
async function jwksFront (t: Test, emulator: RunningEmulator, agent: Dispatcher): Promise<{ url: string, mode: { value: JwksMode }, hung: Array<{ heldMs?: number }> }> {
  const tls = await prepareTls(dirname(emulator.caFile), ['127.0.0.1'])
  const mode = { value: 'ok' as JwksMode }
  const hung: Array<{ heldMs?: number }> = []
  const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    if (req.url?.endsWith('/discovery/v2.0/keys') === true && mode.value !== 'ok') {
      if (mode.value === 'fail') {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}')
        return
      }
      const entry: { heldMs?: number } = {}
      const since = performance.now()
      hung.push(entry)
      res.on('close', () => { entry.heldMs = performance.now() - since })
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      undiciRequest(`${emulator.url}${req.url ?? '/'}`, {
        method: req.method as 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' },
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
        dispatcher: agent
      }).then(async (answer) => {
        res.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') })
        res.end(Buffer.from(await answer.body.arrayBuffer()))
      }, () => { res.writeHead(502).end() })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, mode, hung }
}

t.test('2. JWKS failing during a key rollover: 503 identity_unavailable + Retry-After, bounded by identity.timeoutMs, /readyz says so', async (t) => {
  const bed = await startTestbed(t)
  const { emulator, kit, recorder } = bed
  const front = await jwksFront(t, emulator, kit.agent)
  const cooldownSeconds = 1
  // Far below the fixed timeouts key fetches used to have (10 s to the first byte), so a fetch
  // that ignores identity.timeoutMs shows as a request stalled for seconds beyond it.
  const timeoutMs = 1000
  const slackMs = 2000
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: { ...devGatewayIdentity(emulator), instance: front.url, timeoutMs, keyRefreshCooldownSeconds: cooldownSeconds },
    routes: [{ prefix: '/api', upstream: recorder.url, user }]
  }, { source: 'test' })
  const gateway = await buildGateway(config)
  t.teardown(() => gateway.close())
  // Validation alone: the emulator's token endpoint is not behind the front, so no OBO here.
  gateway.get('/whoami', async (request) => ({ oid: (await gateway.entraAuthenticate(request)).objectId }))
  const client = new Client(await gateway.listen({ host: '127.0.0.1', port: 0 }))
  t.teardown(() => client.close())
  const get = async (path: string, token?: string): Promise<Answer> => {
    const res = await client.request({ method: 'GET', path, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    return { status: res.statusCode, headers: res.headers, body: await res.body.json() as Record<string, unknown> }
  }
  const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, cooldownSeconds * 1000 + 100)) }

  const before = (await kit.signIn()).accessToken
  t.equal((await get('/whoami', before)).status, 200, 'keys loaded through the front')
  t.equal((await get('/readyz')).body.status, 'ready')

  await emulator.keys.rotate(DEV_IDS.tenantId)
  const rotated = (await kit.signIn()).accessToken
  for (const mode of ['fail', 'hang'] as const) {
    front.mode.value = mode
    await settle()
    const started = performance.now()
    const answer = await get('/whoami', rotated)
    const elapsedMs = performance.now() - started
    t.equal(answer.status, 503, `JWKS ${mode}: a token of the new key is 503, not 401`)
    t.ok(elapsedMs < timeoutMs + slackMs, `JWKS ${mode}: answered in ${Math.round(elapsedMs)} ms, within identity.timeoutMs (${timeoutMs} ms) and ${slackMs} ms of slack`)
    errorBody(answer, 'identity_unavailable', t)
    t.notOk(JSON.stringify(answer.body).includes(new URL(front.url).host), `JWKS ${mode}: the body names no address`)
    t.equal(answer.headers['retry-after'], String(cooldownSeconds), 'with Retry-After')
    const ready = await get('/readyz')
    t.match(ready.body, { status: 'degraded', checks: { identity: { status: 'degraded', detail: /could not be refreshed/ } } }, `JWKS ${mode}: /readyz says the keys are stale: ${JSON.stringify(ready.body)}`)
  }
  const held = front.hung.map((h) => h.heldMs === undefined ? 'open' : Math.round(h.heldMs))
  t.ok(front.hung.length >= 1 && front.hung.every((h) => h.heldMs !== undefined && h.heldMs < timeoutMs + slackMs),
    `the hanging key fetch was given up by the gateway after identity.timeoutMs, not left open (held ${held.join(', ')} ms)`)
  const known = await get('/whoami', before)
  t.equal(known.status, 200, `tokens of known keys still pass meanwhile: ${JSON.stringify(known.body)}`)

  front.mode.value = 'ok'
  await settle()
  t.equal((await get('/whoami', rotated)).status, 200, 'once the JWKS answers, the new key is learned')
  t.equal((await get('/readyz')).body.status, 'ready')
})

/** Sends `head` then `drip` one byte every 100 ms (bounded) until the server closes; what it answered. */
async function slowloris (url: string, head: string, drip: string): Promise<{ answer: string, cutOff: boolean }> {
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(head)
  for (let i = 0; i < drip.length && !socket.destroyed; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    if (!socket.destroyed) socket.write(drip.charAt(i))
  }
  const cutOff = socket.destroyed
  socket.destroy()
  await closed
  return { answer: Buffer.concat(chunks).toString('latin1'), cutOff }
}

t.test('3. server.timeouts: a slowloris client is cut off, with 408 where an answer is possible', async (t) => {
  const { url, token, recorder } = await setup(t, { timeouts: { headersMs: 500, requestMs: 1500, keepAliveMs: 500 } })
  // 200 drips at 100 ms: 20 s, far beyond every limit configured here.
  const cases = [
    { name: 'headers one byte at a time', head: 'GET /api/x HTTP/1.1\r\n', drip: 'x-slow: '.padEnd(200, 'a') },
    { name: 'a body one byte at a time', head: `POST /api/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n`, drip: 'b'.repeat(200) }
  ]
  for (const c of cases) {
    const { answer, cutOff } = await slowloris(url, c.head, c.drip)
    t.ok(cutOff, `${c.name}: the gateway closed the connection`)
    t.match(answer, /^HTTP\/1\.1 408 /, `${c.name}: 408`)
    t.match(answer, /"error":"request_timeout"/, `${c.name}: with the JSON error body`)
  }
  t.equal(recorder.requests.length, 0, 'nothing incomplete reached the upstream')

  const { port } = new URL(url)
  const idle = connect(Number(port), '127.0.0.1')
  idle.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n')
  const closedAfterIdle = await new Promise<boolean>((resolve) => {
    const guard = setTimeout(() => resolve(false), 10_000)
    idle.once('close', () => { clearTimeout(guard); resolve(true) })
    idle.resume()
  })
  idle.destroy()
  t.ok(closedAfterIdle, 'an idle keep-alive connection is closed after keepAliveMs')
})

/** An upstream answering each connection with `answer` verbatim (headers and a broken body), then closing. */
async function brokenUpstream (t: Test, answer: string): Promise<string> {
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => { socket.end(answer) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('an upstream answer whose body breaks before the gateway sent anything is 502, not 500 (found by npm run chaos upstream)', async (t) => {
  const bed = await startTestbed(t)
  const cases = [
    { name: 'invalid chunk size', answer: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\nzz\r\nnot a chunk\r\n' },
    { name: 'a chunk, then garbage', answer: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nqq\r\n' }
  ]
  for (const c of cases) {
    const config = resolveConfig({
      server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
      identity: devGatewayIdentity(bed.emulator),
      routes: [{ prefix: '/api', upstream: await brokenUpstream(t, c.answer), user }]
    }, { source: 'test' })
    const gateway = await buildGateway(config)
    t.teardown(() => gateway.close())
    const client = new Client(await gateway.listen({ host: '127.0.0.1', port: 0 }))
    t.teardown(() => client.close())
    const token = (await bed.kit.signIn()).accessToken
    const res = await client.request({ method: 'GET', path: '/api/x', headers: { authorization: `Bearer ${token}` } })
    const text = await res.body.text().catch(() => '(cut off)')
    if (text === '(cut off)') {
      t.equal(res.statusCode, 200, `${c.name}: headers already sent, the answer is cut off`)
      continue
    }
    t.equal(res.statusCode, 502, `${c.name}: ${text}`)
    t.match(JSON.parse(text), { error: 'upstream_unreachable' }, `${c.name}: the upstream error body`)
  }
})
