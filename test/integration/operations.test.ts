import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Redis from 'ioredis'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { startTestbed } from '../helpers/testbed'
import { needRedis, REDIS_URL } from '../helpers/redis'

const CACHE_KEY = 'operations-test-cache-key-0123456789'
const JWT = /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./

t.test('operating the gateway: health, metrics, logs, overload, rate limits, graceful shutdown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-ops-'))
  const { emulator, kit, recorder } = await startTestbed(t, { dataDir: join(dir, 'emulator') })

  const identity = devGatewayIdentity(emulator)
  const routes = [{
    prefix: '/api',
    upstream: recorder.url,
    user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] },
    app: { requireRoles: ['Gateway.Relay'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/.default`] }
  }, { prefix: '/stepup', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`], authContext: 'c1' } }]
  async function gateway (t: Test, extra: Record<string, unknown> = {}, logger: Record<string, unknown> | false = false) {
    const config = resolveConfig({ server: { host: '127.0.0.1', port: 0 }, identity, routes, ...extra }, { source: 'test', env: {} })
    const app = await buildGateway(config, { logger })
    t.teardown(() => app.close())
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    return { app, url }
  }
  const alice = `Bearer ${(await kit.signIn()).accessToken}`
  const bob = `Bearer ${(await kit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password })).accessToken}`
  const get = async (url: string, authorization?: string) => {
    const res = await request(url, { headers: authorization === undefined ? {} : { authorization } })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, any> }
  }

  await t.test('health and readiness: ready, degraded without Redis, not ready without a credential', async (t) => {
    if (!await needRedis(t)) return
    const { url } = await gateway(t, { tokenCache: { redis: { url: REDIS_URL }, encryptionKey: CACHE_KEY } })
    t.same((await get(`${url}/healthz`)).json(), { status: 'ok' })
    const ready = await get(`${url}/readyz`)
    t.equal(ready.status, 200)
    t.match(ready.json(), { status: 'ready', checks: { identity: { status: 'ok' }, credential: { status: 'ok' }, tokenCache: { status: 'ok' } } })

    const noRedis = await gateway(t, { tokenCache: { redis: { url: 'redis://127.0.0.1:1' }, encryptionKey: CACHE_KEY } })
    const degraded = await get(`${noRedis.url}/readyz`)
    t.equal(degraded.status, 200, 'a Redis outage degrades, it does not stop requests')
    t.match(degraded.json(), { status: 'degraded', checks: { tokenCache: { status: 'degraded' } } })
    t.equal((await get(`${noRedis.url}/api/x`, alice)).status, 200, 'and requests are served')

    const noCredential = await gateway(t, { identity: { ...identity, credential: { federatedTokenFile: join(dir, 'missing-token') } } })
    const notReady = await get(`${noCredential.url}/readyz`)
    t.equal(notReady.status, 503)
    t.match(notReady.json(), { status: 'not_ready', checks: { credential: { status: 'failed', detail: /Cannot read the federated token file/ } } })
    t.notMatch(JSON.stringify(notReady.json()), /missing-token/, 'readiness names the problem, never the server\'s file path')
  })

  await t.test('with an admin port, health and metrics move off the public port', async (t) => {
    const lines: Array<Record<string, unknown>> = []
    const stream = new PassThrough()
    stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)))
    const { app, url } = await gateway(t, { server: { host: '127.0.0.1', port: 0, adminPort: 0 } }, { level: 'info', stream })
    t.equal((await get(`${url}/metrics`)).status, 404)
    const adminUrl = await app.adminApp!.listen({ host: '127.0.0.1', port: 0 })
    t.equal((await get(`${adminUrl}/readyz`)).status, 200)
    t.match((await get(`${adminUrl}/metrics`)).text, /obo_gateway_requests_total/)
    t.equal((await get(`${adminUrl}/healthz`)).status, 200)

    await t.test('and answers an unknown path, a malformed request and its logs as the public port does', async (t) => {
      const unknown = async (base: string, id: string) => {
        const res = await request(`${base}/nope?secret=1`, { headers: { 'client-request-id': id } })
        return { status: res.statusCode, headers: res.headers, body: await res.body.json() as Record<string, unknown> }
      }
      const [publicAnswer, adminAnswer] = [await unknown(url, 'public-404'), await unknown(adminUrl, 'admin-404')]
      t.equal(adminAnswer.status, 404)
      t.equal(adminAnswer.headers['client-request-id'], 'admin-404', 'the correlation id is echoed')
      t.match(adminAnswer.headers['content-type'], /^application\/json/)
      t.same(adminAnswer.body, { error: 'not_found', error_description: 'No route for GET /nope', correlation_id: 'admin-404' })
      t.same(adminAnswer.body, { ...publicAnswer.body, correlation_id: 'admin-404' }, 'the public port\'s body')

      const malformed = async (base: string): Promise<{ head: string, body: Record<string, unknown> }> => {
        const socket = connect(Number(new URL(base).port), '127.0.0.1')
        socket.end('NOT HTTP\r\n\r\n')
        let answer = ''
        for await (const chunk of socket) answer += String(chunk)
        const [head = '', body = ''] = answer.split('\r\n\r\n')
        return { head, body: JSON.parse(body) as Record<string, unknown> }
      }
      const [publicRefusal, adminRefusal] = [await malformed(url), await malformed(adminUrl)]
      t.match(adminRefusal.head, /^HTTP\/1\.1 400 Bad Request\r\n/)
      t.match(adminRefusal.head, `\r\nclient-request-id: ${String(adminRefusal.body.correlation_id)}`)
      t.match(adminRefusal.body, { error: 'bad_request', error_description: 'The request is not valid HTTP/1.1', correlation_id: String })
      t.same(adminRefusal.body, { ...publicRefusal.body, correlation_id: adminRefusal.body.correlation_id }, 'a request that is not HTTP: the public port\'s answer')

      await sleep(50)
      t.notOk(lines.some((l) => l.msg === 'incoming request' || l.msg === 'request completed'), 'none of Fastify\'s own request lines')
      const requestLines = lines.filter((l) => l.msg === 'request')
      t.same(requestLines.map((l) => `${String(l.path)} ${String(l.status)}`).sort(), ['/metrics 404', '/nope 404', '/nope 404'],
        'one line per request (the public port\'s /metrics and both /nope) but none for the probes and scrapes')
      const comparable = (line: Record<string, unknown> | undefined) => {
        const { time: _time, reqId: _reqId, durationMs: _durationMs, ...rest } = line ?? {}
        return rest
      }
      t.same(comparable(requestLines.find((l) => l.reqId === 'admin-404')), comparable(requestLines.find((l) => l.reqId === 'public-404')), 'in the public port\'s format')
      t.match(requestLines.find((l) => l.reqId === 'admin-404'), { level: 30, route: 'unmatched', method: 'GET', path: '/nope', status: 404, code: 'OBO_NOT_FOUND', durationMs: Number })
    })
  })

  await t.test('metrics move as requests happen', async (t) => {
    const { url } = await gateway(t)
    for (let i = 0; i < 3; i++) t.equal((await get(`${url}/api/items`, alice)).status, 200)
    t.equal((await get(`${url}/api/items`, 'Bearer not.a.jwt')).status, 401)
    t.equal((await get(`${url}/api/items`)).status, 401)
    t.equal((await get(`${url}/stepup/x`, `Bearer ${(await kit.signIn({ clientCapabilities: ['cp1'] })).accessToken}`)).status, 401)
    emulator.failures.inject({ kind: 'consent_required', userObjectId: DEV_IDS.bob.objectId, times: 1 })
    t.equal((await get(`${url}/api/items`, bob)).status, 403)
    const text = (await get(`${url}/metrics`)).text
    const value = (pattern: string): number => Number(new RegExp(`^${pattern.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
    t.equal(value('obo_gateway_requests_total{route="/api",method="GET",status="200"}'), 3)
    t.equal(value('obo_gateway_requests_total{route="/api",method="GET",status="401"}'), 2)
    t.equal(value('obo_gateway_token_validation_failures_total{reason="malformed"}'), 1)
    t.equal(value('obo_gateway_token_validation_failures_total{reason="missing"}'), 1)
    t.equal(value('obo_gateway_claims_challenges_total{kind="authcontext"}'), 1)
    t.equal(value('obo_gateway_token_cache_lookups{layer="l1",result="hit"}'), 2, 'the 2nd and 3rd request hit L1')
    t.equal(value('obo_gateway_token_acquisitions'), 2, 'Alice once, Bob once (refused)')
    t.equal(value('obo_gateway_entra_errors_total{code="AADSTS65001"}'), 1)
    t.equal(value('obo_gateway_claims_challenges_total{kind="consent"}'), 1)
    t.equal(value('obo_gateway_redis_errors'), 0)
    t.ok(value('obo_gateway_entra_request_duration_seconds_count{endpoint="token",outcome="200"}') >= 1, 'the OBO call was timed')
    t.ok(value('obo_gateway_upstream_duration_seconds_count{route="/api",outcome="200"}') >= 3)
    t.ok(value(`obo_gateway_jwks_fetches_total{tenant="${DEV_IDS.tenantId}",outcome="ok"}`) >= 1)
    t.match(text, /obo_gateway_request_duration_seconds_bucket\{le="0.005",route="\/api",method="GET"\}/)
    t.match(text, /^obo_gateway_process_cpu_user_seconds_total \S+$/m, 'Node\'s process metrics under the gateway\'s prefix')
    t.match(text, /^obo_gateway_nodejs_eventloop_lag_seconds \S+$/m, 'and its runtime metrics')
    t.notMatch(text, /process_process_/, 'no doubled prefix')
  })

  await t.test('logs: one JSON line per request with who and how long; no token or secret even at debug', async (t) => {
    if (!await needRedis(t)) return
    const lines: string[] = []
    const stream = new PassThrough()
    stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)))
    const { url } = await gateway(t, { tokenCache: { redis: { url: REDIS_URL }, encryptionKey: CACHE_KEY } }, { level: 'debug', stream })
    t.equal((await get(`${url}/api/items?code=${alice.slice(7)}`, alice)).status, 200)
    t.equal((await get(`${url}/api/items`, `${alice}x`)).status, 401)
    t.equal((await get(`${url}/stepup/x`, alice)).status, 403)
    t.equal((await get(`${url}/api/x`, `Bearer ${emulator.keys.sign(DEV_IDS.tenantId, { aud: 'x' })}`)).status, 401)
    await sleep(50)
    const requestLines = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
    t.equal(requestLines.length, 4, 'one line per request')
    t.match(requestLines[0], { level: 30, route: '/api', method: 'GET', path: '/api/items', status: 200, durationMs: Number, tenant: DEV_IDS.tenantId, oid: DEV_IDS.alice.objectId, clientId: DEV_IDS.devClient.clientId, reqId: String })
    t.match(requestLines[2], { status: 403, code: 'OBO_CLIENT_CAPABILITY_REQUIRED' })
    const all = lines.join('\n')
    t.notMatch(all, JWT, 'no JWT anywhere in the log')
    for (const secret of [DEV_IDS.gateway.secret, CACHE_KEY, alice.slice(7, 40)]) t.notOk(all.includes(secret), 'no secret or token fragment in the log')
  })

  await t.test('overload sheds load with 503 and Retry-After', async (t) => {
    const { url } = await gateway(t, { server: { host: '127.0.0.1', port: 0, overload: { maxHeapUsedBytes: 1, retryAfterSeconds: 7 } } })
    let res = await get(`${url}/api/x`, alice)
    for (let i = 0; i < 40 && res.status !== 503; i++) {
      await sleep(50)
      res = await get(`${url}/api/x`, alice)
    }
    t.equal(res.status, 503)
    t.equal(res.headers['retry-after'], '7')
    t.match(res.json(), { error: 'overloaded', correlation_id: String })
  })

  await t.test('a per-user rate limit counts each user separately, in Redis for all instances', async (t) => {
    if (!await needRedis(t)) return
    // Windows from an earlier run of this test would still count.
    const redis = new Redis(REDIS_URL)
    t.teardown(() => redis.disconnect())
    const stale = await redis.keys('obo-gateway:rl:*')
    if (stale.length > 0) await redis.del(...stale)
    const { url } = await gateway(t, { server: { host: '127.0.0.1', port: 0, rateLimit: { max: 2, windowSeconds: 60, key: 'user' } }, tokenCache: { redis: { url: REDIS_URL }, encryptionKey: CACHE_KEY } })
    t.equal((await get(`${url}/api/x`, alice)).status, 200)
    t.equal((await get(`${url}/api/x`, alice)).status, 200)
    const limited = await get(`${url}/api/x`, alice)
    t.equal(limited.status, 429)
    t.match(limited.json(), { error: 'rate_limited', correlation_id: String })
    t.ok(Number(limited.headers['retry-after']) > 0)
    t.equal((await get(`${url}/api/x`, bob)).status, 200, 'another user is not limited')
    t.ok((await redis.keys('obo-gateway:rl:*')).length >= 2, 'the windows live in Redis')
  })

  await t.test('SIGTERM: in-flight requests finish, then the process exits 0', async (t) => {
    const upstream = createServer((req, res) => { setTimeout(() => res.end(JSON.stringify({ slow: true })), 1500) })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
    const port = (upstream.address() as AddressInfo).port
    const file = join(dir, 'gateway.json')
    writeFileSync(file, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, identity, routes: [{ ...routes[0], upstream: `http://127.0.0.1:${port}` }] }))
    const child = spawn(process.execPath, [...process.execArgv, resolve(__dirname, '../../src/cli.ts'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } })
    t.teardown(() => child.kill('SIGKILL'))
    let output = ''
    child.stdout.on('data', (c: Buffer) => { output += c.toString() })
    child.stderr.on('data', (c: Buffer) => { output += c.toString() })
    let gatewayUrl: string | undefined
    for (let i = 0; i < 200 && gatewayUrl === undefined; i++) {
      gatewayUrl = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      await sleep(50)
    }
    t.ok(gatewayUrl, 'the gateway started')
    const inFlight = get(`${gatewayUrl}/api/slow`, alice)
    await sleep(700)
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    const answer = await inFlight
    t.equal(answer.status, 200, 'the in-flight request was answered')
    t.same(answer.json(), { slow: true })
    t.equal(code, 0, 'exit code 0')
    t.match(output, /shutting down: finishing in-flight requests/)
  })
})
