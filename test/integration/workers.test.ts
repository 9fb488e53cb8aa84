import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { freePort } from '../../src/net/free-port'
import { needRedis, REDIS_URL } from '../helpers/redis'
import { startTestbed } from '../helpers/testbed'
import { tsxChildEnv } from '../helpers/tsx-child'

// The gateway with `server.workers: 2`, started as a user would (the CLI under tsx, a child
// process with its own workers), against the emulator, a real upstream and real Redis.
t.setTimeout(300_000)
const CLI = resolve(__dirname, '../../src/cli.ts')
const dir = mkdtempSync(join(tmpdir(), 'obo-workers-'))
const OBO = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** A busy machine starts a tsx child in seconds, not milliseconds. */
const START_MS = 120_000

type LogLine = Record<string, unknown> & { msg?: string }

interface RunningCli {
  pid: number
  logs: LogLine[]
  stderr: () => string
  /** Resolves with the first log line `match` accepts, rejecting after `ms`. */
  logged: (match: (line: LogLine) => boolean, what: string, ms?: number) => Promise<LogLine>
  exit: Promise<{ code: number | null, signal: string | null }>
}

function startCli (t: Test, configFile: string): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--config', configFile], { env: tsxChildEnv({ LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: LogLine[] = []
  const waiters: Array<() => void> = []
  let buffered = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine)
      } catch {
        logs.push({ msg: line })
      }
    }
    for (const wake of waiters.splice(0)) wake()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exit = new Promise<{ code: number | null, signal: string | null }>((resolve) => child.once('exit', (code, signal) => { resolve({ code, signal }) }))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exit
    }
  })
  const logged = async (match: (line: LogLine) => boolean, what: string, ms = START_MS): Promise<LogLine> => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = logs.find(match)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no log line: ${what}\nstderr: ${stderr}\nlogs: ${logs.map((l) => JSON.stringify(l)).join('\n')}`)
      if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) before logging ${what}: ${stderr}`)
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), sleep(500)])
    }
  }
  return { pid: child.pid!, logs, stderr: () => stderr, logged, exit }
}

/** An upstream that answers at once, except /hold, which it answers when told to. */
async function startUpstream (t: Test): Promise<{ url: string, held: () => number, release: () => void }> {
  const held: ServerResponse[] = []
  const server: Server = createServer((req, res) => {
    req.resume()
    if (req.url?.includes('/hold') === true) {
      held.push(res)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held.length,
    release: () => { for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}') }
  }
}

/** One request on a connection of its own, so that the cluster hands each to the next worker. */
async function get (url: string, token?: string): Promise<{ status: number, body: string }> {
  const res = await request(url, { reset: true, headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, headersTimeout: 30_000, bodyTimeout: 30_000 })
  return { status: res.statusCode, body: await res.body.text() }
}

/** Prometheus text as [name, labels, value] rows. */
function samples (text: string): Array<{ name: string, labels: Record<string, string>, value: number }> {
  const rows = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!
    rows.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return rows
}

/** Sum of a metric's series, per `worker` label. */
function perWorker (text: string, name: string, where: Record<string, string> = {}): Record<string, number> {
  const sums: Record<string, number> = {}
  for (const s of samples(text)) {
    if (s.name !== name || !Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue
    const worker = s.labels.worker ?? 'none'
    sums[worker] = (sums[worker] ?? 0) + s.value
  }
  return sums
}

const total = (sums: Record<string, number>): number => Object.values(sums).reduce((a, b) => a + b, 0)

t.test('two workers on one port: both serve, share the token through Redis, survive a kill, drain on SIGTERM', async (t) => {
  if (!(await needRedis(t))) return
  const { emulator, kit } = await startTestbed(t)
  const upstream = await startUpstream(t)
  const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType === OBO).length
  const [port, adminPort] = [await freePort(), await freePort()]
  const configFile = join(dir, 'workers.json')
  writeFileSync(configFile, JSON.stringify({
    server: { host: '127.0.0.1', port, adminPort, workers: 2, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/api', upstream: upstream.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }],
    // A key of this run only: nothing another run left in Redis can be read.
    tokenCache: { redis: { url: REDIS_URL }, encryptionKey: randomBytes(32).toString('base64') }
  }))
  const gateway = `http://127.0.0.1:${port}`
  const admin = `http://127.0.0.1:${adminPort}`
  const cli = startCli(t, configFile)
  await cli.logged((l) => /^2 workers serving/.test(l.msg ?? ''), 'both workers serving')
  const firstPids = new Map<number, number>()
  for (const line of cli.logs.filter((l) => l.msg === 'worker serving')) firstPids.set(line.worker as number, line.workerPid as number)
  t.same([...firstPids.keys()].sort(), [1, 2], 'the primary started worker 1 and worker 2')
  t.not(firstPids.get(1), firstPids.get(2), 'in two processes')

  const alice = (await kit.signIn()).accessToken
  const before = oboCalls()

  await t.test('requests spread over both workers; one user costs one OBO call for both', async (t) => {
    const ready = await get(`${admin}/readyz`)
    t.equal(ready.status, 200, ready.body)
    t.match(JSON.parse(ready.body), { status: 'ready', checks: { workers: { status: 'ok', detail: '2 of 2 workers serving' }, tokenCache: { status: 'ok' } } })

    t.equal((await get(`${gateway}/api/items`, alice)).status, 200, 'the first request fills L2')
    const statuses: number[] = []
    for (let batch = 0; batch < 6; batch++) {
      statuses.push(...(await Promise.all(Array.from({ length: 5 }, async () => (await get(`${gateway}/api/items`, alice)).status))))
    }
    t.same(statuses.filter((s) => s !== 200), [], '30 more requests, each on its own connection, all 200')
    t.equal(oboCalls() - before, 1, 'Entra saw one OBO request for 31 requests across two workers')

    const metrics = (await get(`${admin}/metrics`)).body
    const served = perWorker(metrics, 'obo_gateway_requests_total', { status: '200' })
    t.same(Object.keys(served).sort(), ['1', '2'], 'both workers answered requests')
    t.ok(served['1']! > 0 && served['2']! > 0, `per worker: ${JSON.stringify(served)}`)
    t.equal(total(served), 31, 'and the series add up to what was sent')
    t.equal(total(perWorker(metrics, 'obo_gateway_token_acquisitions')), 1, 'one acquisition from Entra in all')
    t.ok(total(perWorker(metrics, 'obo_gateway_token_cache_lookups', { layer: 'l2', result: 'hit' })) >= 1, 'the other worker found the token in Redis')
    t.match(metrics, /^obo_gateway_workers_serving 2$/m)
    t.match(metrics, /^obo_gateway_process_resident_memory_bytes\{worker="1"\} \d+/m, 'process metrics per worker')
  })

  await t.test('the primary\'s admin port answers an unknown path and logs as the gateway does', async (t) => {
    const unknown = await request(`${admin}/nope`, { headers: { 'client-request-id': 'primary-404' } })
    t.equal(unknown.statusCode, 404)
    t.equal(unknown.headers['client-request-id'], 'primary-404')
    t.same(await unknown.body.json(), { error: 'not_found', error_description: 'No route for GET /nope', correlation_id: 'primary-404' })
    const line = await cli.logged((l) => l.msg === 'request' && l.reqId === 'primary-404', 'the primary\'s line for /nope', 30_000)
    t.match(line, { level: 30, route: 'unmatched', method: 'GET', path: '/nope', status: 404, code: 'OBO_NOT_FOUND', durationMs: Number })
    t.notOk('worker' in line, 'written by the primary')
    t.same(cli.logs.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed'), [], 'none of Fastify\'s own request lines')
    t.same(cli.logs.filter((l) => l.msg === 'request' && ['/healthz', '/readyz', '/metrics'].includes(String(l.path))), [], 'and none for the probes and scrapes')
  })

  await t.test('a killed worker is replaced, and requests keep succeeding meanwhile', async (t) => {
    const victim = firstPids.get(1)!
    process.kill(victim, 'SIGKILL')
    // Once the primary knows (a connection it hands over at the very instant of a death is lost:
    // README, "All cores").
    const died = await cli.logged((l) => l.workerPid === victim && typeof l.restartInMs === 'number', 'the death of worker 1')
    t.match(died, { level: 40, worker: 1, exit: 'signal SIGKILL', restartInMs: 500 }, 'the primary logs the death and the backoff')
    const replacedYet = (): boolean => cli.logs.some((l) => l.msg === 'worker serving' && l.worker === 1 && l.workerPid !== victim)
    const during = await Promise.all(Array.from({ length: 10 }, async () => (await get(`${gateway}/api/items`, alice)).status))
    t.same(during.filter((s) => s !== 200), [], 'the other worker answers everything')
    t.notOk(replacedYet(), 'while worker 1 was still down')
    const replaced = await cli.logged((l) => l.msg === 'worker serving' && l.worker === 1 && l.workerPid !== victim, 'a new worker 1')
    t.not(replaced.workerPid, victim)

    const after = await Promise.all(Array.from({ length: 10 }, async () => (await get(`${gateway}/api/items`, alice)).status))
    t.same(after.filter((s) => s !== 200), [], 'and with the new worker')
    t.equal(oboCalls() - before, 1, 'the new worker starts with an empty L1 and finds the token in Redis')
    const metrics = (await get(`${admin}/metrics`)).body
    t.match(metrics, /^obo_gateway_worker_restarts_total\{worker="1"\} 1$/m)
    t.match(metrics, /^obo_gateway_workers_serving 2$/m)
    const ready = JSON.parse((await get(`${admin}/readyz`)).body) as { status: string }
    t.equal(ready.status, 'ready')
  })

  await t.test('SIGTERM: an in-flight request completes, readiness turns 503, the primary exits 0', async (t) => {
    const slow = get(`${gateway}/api/hold`, alice)
    for (let i = 0; upstream.held() === 0; i++) {
      if (i > 600) throw new Error('the held request never reached the upstream')
      await sleep(50)
    }
    process.kill(cli.pid, 'SIGTERM')
    await cli.logged((l) => l.msg === 'shutting down: workers finish their in-flight requests', 'the primary draining', 30_000)
    const ready = await get(`${admin}/readyz`)
    t.equal(ready.status, 503, 'not ready while draining')
    t.match(JSON.parse(ready.body), { status: 'not_ready', checks: { workers: { detail: 'shutting down' } } })
    upstream.release()
    const answer = await slow
    t.same(answer, { status: 200, body: '{"held":true}' }, 'the request in flight got its answer')
    const exit = await Promise.race([cli.exit, sleep(30_000).then(() => 'still running')])
    t.same(exit, { code: 0, signal: null }, `exit 0; stderr: ${cli.stderr()}`)
    t.equal(cli.logs.filter((l) => l.msg === 'shutting down: finishing in-flight requests').length, 2, 'both workers closed')
  })
})

function run (args: string[]): { status: number | null, stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', env: tsxChildEnv({ LOG_LEVEL: 'error' }), timeout: START_MS })
  return { status: res.status, stderr: res.stderr }
}

function configWith (name: string, server: Record<string, unknown>): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify({
    server: { host: '127.0.0.1', ...server },
    identity: { instance: 'https://127.0.0.1:1', tenantId: DEV_IDS.tenantId, clientId: DEV_IDS.gateway.clientId, credential: { clientSecret: 's' } },
    routes: [{ prefix: '/api', upstream: 'http://127.0.0.1:1', user: { requireScopes: ['access_as_user'], scopes: ['https://graph.example/User.Read'] } }]
  }))
  return file
}

t.test('bad server.workers values are a config error naming the key', async (t) => {
  const expected = "server.workers: expected 'auto' (one per available core) or a whole number of worker processes from 1 to 256"
  for (const workers of [0, -1, 1.5, 257, 'many', '2', null]) {
    const res = run(['check-config', configWith('bad-workers.json', { adminPort: 9, workers })])
    t.equal(res.status, 1, `workers: ${JSON.stringify(workers)}`)
    t.equal(res.stderr, `obo-gateway: invalid configuration in ${join(dir, 'bad-workers.json')}:\n  - ${expected}, got ${JSON.stringify(workers)}\n`)
  }
  const noAdmin = run(['--config', configWith('no-admin.json', { workers: 'auto' })])
  t.equal(noAdmin.status, 1)
  t.match(noAdmin.stderr, /server\.adminPort: required when server\.workers is not 1/)
  t.equal(run(['check-config', configWith('auto.json', { adminPort: 9, workers: 'auto' })]).status, 0, "'auto' is valid")
})

t.test('a worker that cannot listen stops the start: exit 1, one line naming the port', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => { resolve() })))
  const port = (taken.address() as AddressInfo).port
  const res = run(['--config', configWith('taken.json', { port, adminPort: await freePort(), workers: 2 })])
  t.equal(res.status, 1)
  t.equal(res.stderr, `obo-gateway: cannot listen on 127.0.0.1:${port}: the address is in use\n`, 'once, not once per worker')
})
