import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfidentialClientApplication } from '@azure/msal-node'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { CacheCipher } from '../../src/acquisition/cache-crypto'
import { oboCacheKey } from '../../src/acquisition/cache-key'
import { assertionFrom } from '../../src/validation/assertion'
import { ConfidentialClients } from '../../src/acquisition/confidential-clients'
import { createMsalNetworkClient } from '../../src/acquisition/msal-network-client'
import { TokenAcquirer } from '../../src/acquisition/token-acquirer'
import { TokenCache } from '../../src/acquisition/token-cache'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import type { GatewayConfig } from '../../src/config/types'
import { DEV_IDS } from '../../src/emulator'
import { principalFromClaims, type DelegatedPrincipal } from '../../src/validation/principal'
import { jwtClaims } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'
import { needRedis, REDIS_URL, redisAnswers } from '../helpers/redis'

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const TENANT = DEV_IDS.tenantId
const KEY = 'integration-test-cache-key-0123456789'
const OBO = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const silentLog = { warn () {}, info () {}, error () {}, debug () {}, trace () {}, fatal () {}, child () { return silentLog }, level: 'silent', silent () {} }

t.test('token cache: real msal-node against the emulator over TLS, real Redis', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType === OBO).length

  const alice = (await kit.signIn()).accessToken
  const aliceCp1 = (await kit.signIn({ clientCapabilities: ['CP1'] })).accessToken
  const bob = (await kit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password })).accessToken
  /** A token for a made-up user, signed by the emulator: Entra (the emulator) accepts it for OBO like any other. */
  const userToken = (lifetimeSeconds = 3600): string => {
    const now = Math.floor(Date.now() / 1000)
    const oid = randomUUID()
    return emulator.keys.sign(TENANT, { ...jwtClaims(alice), oid, sub: oid, name: `user ${oid}`, preferred_username: `${oid}@contoso.example`, iat: now, nbf: now - 5, exp: now + lifetimeSeconds, uti: randomUUID() })
  }

  const config = (redisUrl?: string): GatewayConfig => resolveConfig({
    server: { host: '127.0.0.1', port: 0 },
    identity: devGatewayIdentity(emulator),
    routes: [
      { prefix: '/read', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] } },
      {
        prefix: '/write',
        upstream: recorder.url,
        user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Write`] },
        app: { requireRoles: ['Gateway.Relay'], scopes: [`${SAMPLE}/.default`] }
      }
    ],
    ...(redisUrl === undefined ? {} : { tokenCache: { redis: { url: redisUrl }, encryptionKey: KEY, lockMs: 2000 } })
  }, { source: 'test' })
  const start = async (redisUrl?: string): Promise<{ app: FastifyInstance, url: string }> => {
    const app = await buildGateway(config(redisUrl))
    t.teardown(() => app.close())
    return { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) }
  }
  /** Calls the gateway; answers the status and the downstream token the upstream received. */
  const call = async (gatewayUrl: string, path: string, token: string): Promise<{ status: number, forwarded: string | undefined }> => {
    const before = recorder.requests.length
    const res = await request(`${gatewayUrl}${path}`, { headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    const seen = res.statusCode === 200 && recorder.requests.length > before ? recorder.requests.at(-1) : undefined
    return { status: res.statusCode, forwarded: seen === undefined ? undefined : String(seen.headers.authorization).replace(/^Bearer /, '') }
  }

  await t.test('1,000 concurrent identical requests through one gateway make exactly one OBO call', async (t) => {
    const gw = await start()
    const token = userToken()
    const before = oboCalls()
    const upstreamBefore = recorder.requests.length
    const statuses = await Promise.all(Array.from({ length: 1000 }, async () => {
      const res = await request(`${gw.url}/read/items`, { headers: { authorization: `Bearer ${token}` } })
      await res.body.dump()
      return res.statusCode
    }))
    t.equal(statuses.filter((s) => s === 200).length, 1000, 'every request succeeded')
    t.equal(oboCalls() - before, 1, 'Entra saw one OBO request')
    const forwarded = new Set(recorder.requests.slice(upstreamBefore).map((r) => r.headers.authorization))
    t.equal(forwarded.size, 1, 'the upstream got the same downstream token 1,000 times')
    const stats = gw.app.tokenAcquirer.stats()
    t.equal(stats.acquisitions, 1)
    t.equal(stats.hits.l1 + stats.singleFlightWaits + 1, 1000, 'the rest were L1 hits or joined the one flight')
    t.match(gw.app.tokenAcquirer.status(), { l2: 'disabled', l1: { entries: 1 } })
  })

  await t.test('different users, scopes or cp1 get different entries; the same get the same', async (t) => {
    const gw = await start()
    const before = oboCalls()
    const a1 = await call(gw.url, '/read/x', alice)
    const a2 = await call(gw.url, '/read/y', alice)
    t.equal(a1.status, 200)
    t.equal(a2.forwarded, a1.forwarded, 'same user, same scopes: the cached token')
    t.equal(oboCalls() - before, 1)
    const write = await call(gw.url, '/write/x', alice)
    t.not(write.forwarded, a1.forwarded, 'other scopes: another token')
    t.equal(jwtClaims(write.forwarded!).scp, 'Items.Write')
    const capable = await call(gw.url, '/read/x', aliceCp1)
    t.same(jwtClaims(capable.forwarded!).xms_cc, ['cp1'], 'cp1 caller: a token that declares cp1')
    t.equal(jwtClaims(a1.forwarded!).xms_cc, undefined)
    const other = await call(gw.url, '/read/x', bob)
    t.equal(jwtClaims(other.forwarded!).oid, DEV_IDS.bob.objectId, 'another user: their own token, never alice\'s')
    t.equal(oboCalls() - before, 4, 'one OBO call per distinct (user, scopes, cp1)')
    t.equal(gw.app.tokenAcquirer.status().l1.entries, 4)
    for (const [token, path] of [[alice, '/read/z'], [alice, '/write/z'], [aliceCp1, '/read/z'], [bob, '/read/z']] as const) {
      t.equal((await call(gw.url, path, token)).status, 200)
    }
    t.equal(oboCalls() - before, 4, 'and all four are served from the cache afterwards')
  })

  await t.test('msal-node\'s own cache does not grow with the number of users', async (t) => {
    const clients = new ConfidentialClients(config().identity, createMsalNetworkClient(kit.agent), silentLog as never)
    const acquirer = new TokenAcquirer(clients, { clientId: DEV_IDS.gateway.clientId, homeTenantId: TENANT, cache: new TokenCache({ l1: { maxEntries: 1000, maxBytes: 10_000_000 } }) })
    const msalEntries = (): number => Object.keys(clients.forTenant(TENANT, false).getTokenCache().getKVStore()).length
    const principal = (token: string): DelegatedPrincipal => principalFromClaims(jwtClaims(token), TENANT) as DelegatedPrincipal
    const first = userToken()
    await acquirer.forUser(principal(first), assertionFrom(first), [`${SAMPLE}/Items.Read`])
    const afterOne = msalEntries()
    for (let i = 0; i < 25; i++) {
      const token = userToken()
      t.equal((await acquirer.forUser(principal(token), assertionFrom(token), [`${SAMPLE}/Items.Read`])).source, 'entra')
    }
    t.equal(msalEntries(), afterOne, `after 26 users msal-node still holds ${afterOne} entries`)
    const kinds = Object.keys(clients.forTenant(TENANT, false).getTokenCache().getKVStore()).join(' ')
    t.notMatch(kinds, /accesstoken|refreshtoken|idtoken/, 'no user token left in msal-node')
    t.equal(acquirer.status().l1.entries, 26)

    // What the cleanup prevents: the same calls on a bare msal-node client leave ~4 entries per user.
    const bare = kit.confidentialClient()
    for (let i = 0; i < 5; i++) await bare.acquireTokenOnBehalfOf({ oboAssertion: userToken(), scopes: [`${SAMPLE}/Items.Read`], skipCache: true })
    t.ok(Object.keys(bare.getTokenCache().getKVStore()).length >= 5 * 3, 'msal-node alone keeps what each user\'s OBO answer held')
    t.type(bare, ConfidentialClientApplication)
  })

  await t.test('three gateway instances on one Redis: one OBO call per key, L2 serves the others', async (t) => {
    if (!await needRedis(t)) return
    const gws = [await start(REDIS_URL), await start(REDIS_URL), await start(REDIS_URL)]
    for (const gw of gws) t.equal(gw.app.tokenAcquirer.status().l2, 'ok')
    const user = userToken()
    const before = oboCalls()
    const first = await call(gws[0]!.url, '/read/a', user)
    t.equal(first.status, 200)
    const second = await call(gws[1]!.url, '/read/a', user)
    t.equal(second.status, 200)
    t.equal(second.forwarded, first.forwarded, 'instance 2 forwarded instance 1\'s token')
    t.equal(oboCalls() - before, 1, 'without calling Entra')
    t.match(gws[1]!.app.tokenAcquirer.stats(), { hits: { l2: 1 }, acquisitions: 0 })

    // A new user hitting all three at once: the Redis lock lets one instance call Entra, the others wait for its fill.
    const concurrent = userToken()
    const beforeBurst = oboCalls()
    const results = await Promise.all(Array.from({ length: 60 }, async (_, i) => await call(gws[i % 3]!.url, '/write/b', concurrent)))
    t.ok(results.every((r) => r.status === 200), '60 requests over 3 instances all succeeded')
    t.equal(new Set(results.map((r) => r.forwarded)).size, 1, 'with one downstream token')
    t.equal(oboCalls() - beforeBurst, 1, 'from one OBO call')
    const waits = gws.map((gw) => gw.app.tokenAcquirer.stats()).reduce((n, s) => n + s.lockWaitFills + s.hits.l2, 0)
    t.ok(waits >= 2, 'the other instances got it through Redis')

    // App tokens too, and nothing readable as a token is in Redis.
    const daemon = (await kit.appToken()).accessToken
    t.equal((await call(gws[2]!.url, '/write/jobs', daemon)).status, 200)

    const redis = new Redis(REDIS_URL)
    t.teardown(() => redis.disconnect())
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', 'obo-gateway:v1:*', 'COUNT', 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== '0')
    const cipher = new CacheCipher(KEY)
    const forwardedTokens = new Set(recorder.requests.map((r) => String(r.headers.authorization).replace(/^Bearer /, '')))
    let decrypted = 0
    for (const key of keys) {
      t.match(key, /^obo-gateway:v1:\{[0-9a-f]{64}\}:[tl]$/, 'keys are hashes')
      const value = await redis.get(key)
      if (value === null) continue // expired between SCAN and GET
      t.notMatch(value, /eyJ/, `${key}: no JWT`)
      t.notOk(forwardedTokens.has(value))
      t.throws(() => jwtClaims(value), `${key}: does not decode as a token`)
      if (key.endsWith(':t')) {
        t.match(value, /^v1\.[0-9a-f]{12}\.[0-9a-f]+$/)
        try {
          const entry = JSON.parse(cipher.decrypt(value, key)) as { accessToken: string }
          if (forwardedTokens.has(entry.accessToken)) decrypted++
        } catch {
          // written by another run with another key: unreadable, as it should be
        }
      }
    }
    t.ok(decrypted >= 3, `the gateway's entries (${decrypted}) are the forwarded tokens, readable only with the key`)
  })

  await t.test('entries end when the incoming assertion does, in L1 and in L2', async (t) => {
    const withRedis = await redisAnswers(REDIS_URL)
    const gw = await start(withRedis ? REDIS_URL : undefined)
    const shortLived = userToken(2)
    const before = oboCalls()
    const first = await call(gw.url, '/read/x', shortLived)
    t.equal(first.status, 200)
    t.equal((await call(gw.url, '/read/x', shortLived)).forwarded, first.forwarded, 'cached while the assertion lives')
    t.equal(oboCalls() - before, 1)
    if (withRedis) {
      const redis = new Redis(REDIS_URL)
      t.teardown(() => redis.disconnect())
      const key = (await redis.keys('obo-gateway:v1:*:t')).find((k) => k.includes(oboCacheKey({ clientId: DEV_IDS.gateway.clientId, tenantId: TENANT, assertion: assertionFrom(shortLived), scopes: [`${SAMPLE}/Items.Read`], cp1: false })))
      t.ok(key !== undefined, 'written to L2')
      const ttl = await redis.pttl(key!)
      t.ok(ttl > 0 && ttl <= 2000, `Redis TTL (${ttl} ms) is the assertion's remaining life, not the downstream token's hour`)
    }
    await sleep((jwtClaims(shortLived).exp as number) * 1000 - Date.now() + 100)
    // The gateway's 300 s clock skew still lets the token in; the cache must not answer with the old downstream token.
    const after = await call(gw.url, '/read/x', shortLived)
    t.equal(after.status, 401, 'Entra refused the expired assertion: no stale token was forwarded')
    t.equal(oboCalls() - before, 2, 'the cache went back to Entra')
  })

  await t.test('Redis stopped, slow and restarted: no failed request, status degraded, recovery', async (t) => {
    if (!await needRedis(t)) return
    const port = await freePort()
    let server = await startRedisServer(port)
    t.teardown(() => { server.kill('SIGKILL') })
    const url = `redis://127.0.0.1:${port}`
    const gw = await start(url)
    await waitFor(() => gw.app.tokenAcquirer.status().l2 === 'ok')
    const acquirer = gw.app.tokenAcquirer
    const dave = userToken()
    t.equal((await call(gw.url, '/read/x', dave)).status, 200)
    t.equal(acquirer.status().l2, 'ok')

    // Slow: Redis holds every command for 1.5 s; requests go on without it.
    const admin = new Redis(url)
    admin.on('error', () => {})
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
    admin.disconnect()
    t.equal((await call(gw.url, '/read/x', userToken())).status, 200, 'a new user while Redis is paused')
    t.ok(acquirer.stats().redisErrors >= 1, 'the timeout was counted')
    t.equal(acquirer.status().l2, 'degraded')

    // Down.
    server.kill('SIGKILL')
    await new Promise((resolve) => server.once('exit', resolve))
    for (const token of [dave, userToken(), userToken()]) {
      t.equal((await call(gw.url, '/read/x', token)).status, 200, 'served through L1 and Entra')
    }
    t.equal(acquirer.status().l2, 'degraded')

    // Back: ioredis reconnects by itself and L2 fills again.
    server = await startRedisServer(port)
    await waitFor(() => acquirer.status().l2 === 'ok', 8000)
    t.equal(acquirer.status().l2, 'ok', 'recovered after the restart')
    t.equal((await call(gw.url, '/read/x', userToken())).status, 200)
    const fresh = new Redis(url)
    t.teardown(() => fresh.disconnect())
    t.ok((await fresh.dbsize()) >= 1, 'the restarted Redis receives entries again')
  })
})

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function startRedisServer (port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const spawnError = new Promise<never>((_resolve, reject) => child.once('error', reject))
  await Promise.race([spawnError, waitFor(async () => await redisAnswers(`redis://127.0.0.1:${port}`), 5000)])
  return child
}

async function waitFor (check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(50)
  }
}
