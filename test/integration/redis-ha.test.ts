import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { oboCacheKey } from '../../src/acquisition/cache-key'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { assertionFrom } from '../../src/validation/assertion'
import { jwtClaims } from '../helpers/msal-clients'
import { needRedisBinaries, startRedisCluster, startSentinelSet, waitFor } from '../helpers/redis-topologies'
import { startTestbed, type Testbed } from '../helpers/testbed'

/**
 * The gateway on a real Redis Cluster (3 masters, 3 replicas) and a real Sentinel set (master,
 * replica, 3 sentinels), each started here from redis-server: instances share tokens through
 * them, and a master SIGKILLed under load costs no request, only a degraded readiness until the
 * promoted replica takes the writes.
 */

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const TENANT = DEV_IDS.tenantId
const SCOPES = [`${SAMPLE}/Items.Read`]
const KEY = 'redis-ha-test-cache-key-0123456789'
const OBO = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const IN_FLIGHT = 6
/**
 * Where Entra calls are counted, Redis commands get two seconds instead of the default 250 ms: the
 * machine running the tests may be busy, and a timed-out command sends that instance to Entra on
 * its own, right for the gateway but not what is counted. The failovers run on the default.
 */
const PATIENT_MS = 2000

interface Gateway { app: FastifyInstance, url: string }

interface LoadResult {
  requests: number
  /** When each request was sent and answered. */
  spans: Array<[number, number]>
  failures: string[]
  /** Redis errors the instances counted between the kill and every instance being ready again. */
  redisErrorsDuringOutage: number
  /** Every /readyz answer seen while the load ran, per instance. */
  readiness: Array<Array<{ at: number, status: string }>>
}

t.test('Redis Cluster and Sentinel under the gateway', async (t) => {
  if (!needRedisBinaries(t)) return
  const bed = await startTestbed(t)
  const { emulator, recorder } = bed
  const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType === OBO).length
  const alice = (await bed.kit.signIn()).accessToken
  /** A token for a user nobody has seen: its first request reaches L2 and Entra. */
  const newUser = (): string => {
    const now = Math.floor(Date.now() / 1000)
    const oid = randomUUID()
    return emulator.keys.sign(TENANT, { ...jwtClaims(alice), oid, sub: oid, iat: now, nbf: now - 5, exp: now + 3600, uti: randomUUID() })
  }
  const valueKey = (token: string): string => `obo-gateway:v1:{${oboCacheKey({ clientId: DEV_IDS.gateway.clientId, tenantId: TENANT, assertion: assertionFrom(token), scopes: SCOPES, cp1: false })}}:t`

  const startGateways = async (t: Test, redisUrl: string, commandTimeoutMs?: number): Promise<Gateway[]> => await Promise.all(Array.from({ length: 3 }, async () => {
    const app = await buildGateway(resolveConfig({
      // Three gateways, the emulator and the load share this one event loop: shedding on its delay
      // would measure the test machine, not the failover.
      server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/read', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: SCOPES } }],
      tokenCache: { redis: { url: redisUrl, ...(commandTimeoutMs === undefined ? {} : { commandTimeoutMs }) }, encryptionKey: KEY, lockMs: 3000 }
    }, { source: 'test' }))
    t.teardown(() => app.close())
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    await waitFor('the gateway to reach Redis', () => app.tokenAcquirer.status().l2 === 'ok', 10_000)
    return { app, url }
  }))
  /** A few users through each instance first, so that counted requests find connections to every node open. */
  const warmUp = async (gws: Gateway[]): Promise<void> => {
    for (const gw of gws) for (let i = 0; i < 6; i++) await call(gw, newUser())
  }

  await t.test('Redis Cluster: 3 masters, 3 replicas', async (t) => {
    const cluster = await startRedisCluster(t)
    const counted = await startGateways(t, cluster.url, PATIENT_MS)
    await warmUp(counted)
    await oneEntraCallPerKey(t, bed, counted, newUser, oboCalls)
    const gws = await startGateways(t, cluster.url)

    const before = await cluster.masters()
    t.equal(before.length, 3, 'three masters')
    const victim = cluster.nodes.find((n) => n.port === before[0])!
    // New users whose entries live on the master about to die, one per instance: each instance
    // then meets the outage for sure, however little else of the load reaches Redis meanwhile.
    const probes: string[] = []
    while (probes.length < gws.length) {
      const candidate = newUser()
      if (await cluster.ownerOf(valueKey(candidate)) === victim.port) probes.push(candidate)
    }
    const { load, killedAt, promotedAt, backAt } = await failover(gws, newUser, probes, async () => {
      await victim.kill()
    }, async () => {
      const now = await cluster.masters()
      return now.length === 3 && !now.includes(victim.port)
    })
    const promoted = (await cluster.masters()).find((p) => !before.includes(p))!
    report(t, 'cluster', load, killedAt, promotedAt, backAt, false)
    await l2Back(t, gws, promoted, newUser, valueKey, oboCalls, cluster.ownerOf)
  })

  await t.test('Redis Sentinel: master, replica, 3 sentinels', async (t) => {
    const set = await startSentinelSet(t)
    const counted = await startGateways(t, set.url, PATIENT_MS)
    await warmUp(counted)
    await oneEntraCallPerKey(t, bed, counted, newUser, oboCalls)
    const gws = await startGateways(t, set.url)

    t.equal(await set.currentMasterPort(), set.master.port)
    const { load, killedAt, promotedAt, backAt } = await failover(gws, newUser, gws.map(newUser), async () => {
      await set.master.kill()
    }, async () => await set.currentMasterPort() === set.replica.port)
    report(t, 'sentinel', load, killedAt, promotedAt, backAt, true)
    await l2Back(t, gws, set.replica.port, newUser, valueKey, oboCalls)
  })
})

async function call (gw: Gateway, token: string): Promise<{ status: number, body: string }> {
  const res = await request(`${gw.url}/read/items`, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 })
  return { status: res.statusCode, body: await res.body.text() }
}

async function readiness (gw: Gateway): Promise<string> {
  const res = await request(`${gw.url}/readyz`, { headersTimeout: 5000, bodyTimeout: 5000 })
  return ((await res.body.json()) as { status: string }).status
}

/** What the upstream received as the downstream token on the last request. */
function lastForwarded (bed: Testbed): string {
  return String(bed.recorder.requests.at(-1)?.headers.authorization)
}

async function oneEntraCallPerKey (t: Test, bed: Testbed, gws: Gateway[], newUser: () => string, oboCalls: () => number): Promise<void> {
  const user = newUser()
  const before = oboCalls()
  const l2Hits = gws.slice(1).map((gw) => gw.app.tokenAcquirer.stats().hits.l2)
  t.equal((await call(gws[0]!, user)).status, 200)
  const first = lastForwarded(bed)
  for (const gw of gws.slice(1)) {
    t.equal((await call(gw, user)).status, 200)
    t.equal(lastForwarded(bed), first, 'another instance forwarded the same downstream token')
  }
  t.equal(oboCalls() - before, 1, 'three instances, one Entra call')
  t.same(gws.slice(1).map((gw) => gw.app.tokenAcquirer.stats().hits.l2 - l2Hits.shift()!), [1, 1], 'the other two found it in Redis')

  const burst = newUser()
  const beforeBurst = oboCalls()
  const statuses = await Promise.all(Array.from({ length: 30 }, async (_, i) => (await call(gws[i % gws.length]!, burst)).status))
  t.equal(statuses.filter((s) => s === 200).length, 30, '30 concurrent requests of a new user over three instances succeeded')
  const counters = gws.map((gw) => { const s = gw.app.tokenAcquirer.stats(); return `redis errors ${s.redisErrors}, lock waits filled ${s.lockWaitFills}` })
  t.equal(oboCalls() - beforeBurst, 1, `with one Entra call between them (${counters.join('; ')})`)
}

/**
 * Requests run without pause over every instance (a new user in one request of four, so Redis is
 * read and written throughout) and /readyz is polled, while `kill` takes a master down; right
 * after it each instance gets its probe (a new user) and its readiness is read; the load goes on
 * until `promoted` holds and every instance is ready again, then half a second more.
 */
async function failover (gws: Gateway[], newUser: () => string, probes: string[], kill: () => Promise<void>, promoted: () => Promise<boolean>): Promise<{ load: LoadResult, killedAt: number, promotedAt: number, backAt: number }> {
  const load: LoadResult = { requests: 0, spans: [], failures: [], redisErrorsDuringOutage: 0, readiness: gws.map(() => []) }
  const recent: string[] = Array.from({ length: 10 }, newUser)
  let running = true
  let n = 0
  const worker = async (): Promise<void> => {
    while (running) { // eslint-disable-line no-unmodified-loop-condition -- set by the caller
      const i = n++
      // One request in four is a new user; four and three instances share no factor, so each gets some.
      const token = i % 4 === 0 ? newUser() : recent[i % recent.length]!
      if (i % 4 === 0) recent[i % recent.length] = token
      await send(gws[i % gws.length]!, token)
    }
  }
  const send = async (gw: Gateway, token: string): Promise<void> => {
    const sentAt = Date.now()
    try {
      const res = await call(gw, token)
      if (res.status !== 200) load.failures.push(`${res.status} ${res.body}`)
    } catch (err) {
      load.failures.push(String(err))
    }
    load.spans.push([sentAt, Date.now()])
    load.requests++
  }
  const look = async (gw: Gateway, i: number): Promise<void> => {
    load.readiness[i]!.push({ at: Date.now(), status: await readiness(gw).catch((err: unknown) => `unanswered: ${String(err)}`) })
  }
  const poller = async (): Promise<void> => {
    while (running) { // eslint-disable-line no-unmodified-loop-condition -- set by the caller
      await Promise.all(gws.map(look))
      await sleep(100)
    }
  }
  const workers = [...Array.from({ length: IN_FLIGHT }, worker), poller()]
  try {
    await sleep(500)
    const redisErrors = (): number => gws.reduce((n, gw) => n + gw.app.tokenAcquirer.stats().redisErrors, 0)
    const errorsBefore = redisErrors()
    const killedAt = Date.now()
    await kill()
    await Promise.all(gws.map(async (gw, i) => {
      await send(gw, probes[i]!)
      await look(gw, i)
    }))
    await waitFor('a replica to be promoted', promoted, 20_000)
    const promotedAt = Date.now()
    await waitFor('every instance ready again', async () => (await Promise.all(gws.map(readiness))).every((s) => s === 'ready'), 20_000)
    const backAt = Date.now()
    load.redisErrorsDuringOutage = redisErrors() - errorsBefore
    await sleep(500)
    return { load, killedAt, promotedAt, backAt }
  } finally {
    running = false
    await Promise.all(workers)
  }
}

/**
 * A sentinel client loses its connection with the master, so every instance is degraded until it
 * finds the new one. A cluster client stays connected to the other masters: an instance is degraded
 * for a second after each failed command, which a busy test machine can let pass between two polls,
 * so there the failed commands are what is asserted.
 */
function report (t: Test, name: string, load: LoadResult, killedAt: number, promotedAt: number, backAt: number, everyInstanceDegrades: boolean): void {
  const duringOutage = load.spans.filter(([sent, answered]) => sent < backAt && answered > killedAt).length
  t.comment(`${name}: master SIGKILLed; replica promoted after ${promotedAt - killedAt} ms, every instance ready after ${backAt - killedAt} ms; ${load.failures.length} of ${load.requests} requests failed (${duringOutage} in flight meanwhile)`)
  t.ok(duringOutage >= load.readiness.length, `requests were in flight while the master was down (${duringOutage})`)
  t.same(load.failures, [], 'no request failed while the master was down')
  const degraded = load.readiness.map((seen) => seen.some((r) => r.at >= killedAt && r.status === 'degraded'))
  if (everyInstanceDegrades) t.same(degraded, degraded.map(() => true), 'every instance\'s readiness said degraded meanwhile')
  else {
    t.comment(`${name}: /readyz said degraded meanwhile on instances ${degraded.join(', ')}`)
    t.ok(load.redisErrorsDuringOutage > 0, `instances met the outage (${load.redisErrorsDuringOutage} Redis errors), which /readyz reports as degraded`)
  }
  const unexpected = load.readiness.flat().filter((r) => r.status !== 'ready' && r.status !== 'degraded')
  t.same(unexpected, [], 'and never not_ready or unanswered: the gateway serves without Redis')
}

/**
 * L2 works again without a restart: a new user's token, written through one instance after the
 * failover and stored on the promoted node, is read by another instance without calling Entra.
 */
async function l2Back (t: Test, gws: Gateway[], promotedPort: number, newUser: () => string, valueKey: (token: string) => string, oboCalls: () => number, ownerOf?: (key: string) => Promise<number>): Promise<void> {
  const promoted = new Redis({ host: '127.0.0.1', port: promotedPort, maxRetriesPerRequest: 0, retryStrategy: () => null })
  promoted.on('error', () => {})
  t.teardown(() => { promoted.disconnect() })
  const writer = gws[0]!
  let user: string | undefined
  // A write is skipped while the instance backs off after a failed command, which a busy machine
  // can still be doing here: retry with a fresh user until one entry lands.
  for (let attempt = 0; attempt < 10 && user === undefined; attempt++) {
    let candidate = newUser()
    // In a cluster the promoted node holds a third of the slots: pick a user whose key it serves.
    if (ownerOf !== undefined) while (await ownerOf(valueKey(candidate)) !== promotedPort) candidate = newUser()
    await waitFor('the writing instance to use Redis again', () => writer.app.tokenAcquirer.status().l2 === 'ok', 10_000)
    t.equal((await call(writer, candidate)).status, 200)
    const stored = await waitFor('the entry on the promoted node', async () => await promoted.exists(valueKey(candidate)).catch(() => 0) === 1, 2000).then(() => true, () => false)
    if (stored) user = candidate
  }
  t.ok(user, 'an entry written after the failover is on the promoted node')
  const reader = gws[1]!
  await waitFor('the reading instance to use Redis again', () => reader.app.tokenAcquirer.status().l2 === 'ok', 10_000)
  const before = oboCalls()
  const hits = reader.app.tokenAcquirer.stats().hits.l2
  t.equal((await call(reader, user!)).status, 200)
  t.equal(reader.app.tokenAcquirer.stats().hits.l2, hits + 1, 'another instance read it from Redis')
  t.equal(oboCalls() - before, 0, 'without calling Entra')
}
