/**
 * Forwarding throughput (issue #5): the gateway against a plain @fastify/reply-from proxy to the
 * same upstream, and against the upstream called directly, in one run, on loopback, 50 connections.
 *
 *   npm run bench:proxy                        (3 rounds, 2 s warm-up + 8 s per case)
 *   npm run bench:proxy -- --rounds 1 --seconds 5 --profile
 *   npm run bench:proxy -- --case small         (only the cases whose name contains "small")
 *
 * Through the gateway every request is a validation cache hit and a token cache hit: the same
 * real user token (Alice, signed in with msal-node against the in-process Entra ID emulator) is
 * sent every time, and the run checks at the end that the gateway asked Entra for exactly one
 * downstream token.
 *
 * Processes and cores (the machine has 2): this process runs autocannon (programmatic API) and the
 * emulator, which is idle once the gateway's caches are warm. The upstream (plain node:http), the
 * gateway and the reply-from proxy each run in their own child process. With taskset available,
 * the process under test gets CPU 1 to itself and the load generator shares CPU 0 with the
 * upstream; in the direct case the upstream is moved to CPU 1 for the duration of the case, so the
 * server under load always has the same core. Each proxy's CPU time per request is read from
 * /proc while it is under load.
 *
 * --profile adds one more small-JSON case per proxy with the V8 CPU profiler running in that
 * proxy's process (what `node --cpu-prof` records, but only over the measured window) and prints
 * self time by area and the top self-time functions, and for the gateway the inclusive time of its
 * own functions.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import { request as undiciRequest } from 'undici'
import { DEV_IDS, startEmulator } from '../src/emulator'
import { MsalKit } from '../test/helpers/msal-clients'

const HOST = '127.0.0.1'
const CONNECTIONS = 50
const MIB = 1024 * 1024
const SMALL_JSON = Buffer.from(JSON.stringify({ id: 42, name: 'Widget', owner: 'alice@contoso.example', tags: ['a', 'b', 'c'], price: 9.99, inStock: true }))
const ONE_MIB = Buffer.alloc(MIB, 'x')
const LOAD_CPU = '0'
const SUT_CPU = '1'
const CHILD_START_TIMEOUT_MS = 60_000
const PROFILE_SAMPLING_US = 250

// ---------------------------------------------------------------------------------------------
// Child processes

/** The upstream: small JSON, 1 MiB answers, and an upload sink answering small JSON. */
async function runUpstream (): Promise<void> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? ''
    if (req.method === 'POST' && url.endsWith('/upload')) {
      let bytes = 0
      req.on('data', (chunk: Buffer) => { bytes += chunk.length })
      req.on('end', () => {
        const body = `{"received":${bytes}}`
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
      return
    }
    const body = url.endsWith('/1mb') ? ONE_MIB : url.endsWith('/small') ? SMALL_JSON : undefined
    if (body === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': body === ONE_MIB ? 'application/octet-stream' : 'application/json', 'content-length': body.length })
    res.end(body)
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  announce((server.address() as AddressInfo).port, async () => { server.closeAllConnections(); server.close() })
}

/** The plain proxy: @fastify/reply-from on undici, keep-alive pool, no retries, no logging. */
async function runReplyFrom (upstream: string): Promise<void> {
  const app = Fastify({ logger: false })
  // Bodies stream through unparsed, as @fastify/http-proxy and the gateway do.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
  await app.register(replyFrom, {
    base: upstream,
    undici: {
      connections: 128, // reply-from's own default: a keep-alive pool of up to 128 sockets
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: 30_000, // the gateway's route defaults
      bodyTimeout: 60_000
    },
    retryMethods: [], // no retries at all (not even its default 503 retries of GET)
    disableRequestLogging: true
  })
  const handler = (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply): void => {
    const url = request.raw.url ?? '/'
    reply.from(url.slice('/api'.length) || '/')
  }
  app.all('/api', handler)
  app.all('/api/*', handler)
  await app.listen({ host: HOST, port: 0 })
  announce((app.server.address() as AddressInfo).port, async () => { await app.close() })
}

/**
 * The gateway as `buildGateway` makes it: one user route to the upstream, no logger. It is loaded
 * from dist/ (the `bench:proxy` script builds first), the JavaScript `npm start` runs: through tsx
 * every closure the gateway creates per request would also pay for esbuild's keep-names helper.
 */
async function runGateway (raw: string): Promise<void> {
  const { buildGateway } = require('../dist/src/app') as typeof import('../src/app')
  const { resolveConfig } = require('../dist/src/config/load') as typeof import('../src/config/load')
  const config = resolveConfig(JSON.parse(raw), { source: 'bench' })
  const app = await buildGateway(config)
  await app.listen({ host: HOST, port: 0 })
  announce((app.server.address() as AddressInfo).port, async () => { await app.close() })
}

type ProfileKind = 'cpu' | 'alloc'
type ControlMessage = 'close' | { start: ProfileKind } | { stop: ProfileKind, to: string }
interface GcStats { [kind: string]: { count: number, ms: number } }

function announce (port: number, close: () => Promise<void>): void {
  let session: Session | undefined
  let gc: PerformanceObserver | undefined
  let gcStats: GcStats = {}
  const fail = (err: unknown): void => { console.error(err); process.exit(1) }
  process.on('message', (message: ControlMessage) => {
    if (message === 'close') {
      close().finally(() => process.exit(0))
    } else if ('start' in message) {
      // Over the inspector protocol, so only the measured window is recorded, not start-up
      // (module loading through tsx) or the warm-up. 'cpu' is what `node --cpu-prof` records;
      // 'alloc' is V8's sampling heap profiler, counting objects already collected too.
      session = new Session()
      session.connect()
      gcStats = {}
      gc = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          const kind = GC_KINDS[(entry as unknown as { detail: { kind: number } }).detail.kind] ?? 'other'
          const stat = gcStats[kind] ?? (gcStats[kind] = { count: 0, ms: 0 })
          stat.count++
          stat.ms += entry.duration
        }
      })
      gc.observe({ entryTypes: ['gc'] })
      const started = message.start === 'cpu'
        ? session.post('Profiler.enable')
          .then(() => session!.post('Profiler.setSamplingInterval', { interval: PROFILE_SAMPLING_US }))
          .then(() => session!.post('Profiler.start'))
        : session.post('HeapProfiler.enable')
          .then(() => session!.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never))
      started.then(() => process.send?.('started'), fail)
    } else if (session !== undefined) {
      const stopped = message.stop === 'cpu'
        ? session.post('Profiler.stop').then(({ profile }) => profile as unknown)
        : session.post('HeapProfiler.stopSampling').then(({ profile }) => profile as unknown)
      stopped.then((profile) => {
        gc?.disconnect()
        writeFileSync(message.to, JSON.stringify(profile))
        session!.disconnect()
        process.send?.({ gc: gcStats })
      }, fail)
    }
  })
  process.send?.({ port })
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks'
}

// ---------------------------------------------------------------------------------------------
// The driver

interface Child { name: string, proc: ChildProcess, port: number, url: string }

const pinning = spawnSync('taskset', ['-c', '0', 'true']).status === 0

function startChild (name: string, args: string[], cpu: string): Promise<Child> {
  const nodeArgs = ['--import', 'tsx', __filename, ...args]
  const proc = pinning
    ? spawn('taskset', ['-c', cpu, process.execPath, ...nodeArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill(); reject(new Error(`${name} did not start in time`)) }, CHILD_START_TIMEOUT_MS)
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${String(code)}) before listening`)) })
    proc.once('message', (message: { port: number }) => {
      clearTimeout(timer)
      proc.removeAllListeners('exit')
      resolve({ name, proc, port: message.port, url: `http://${HOST}:${message.port}` })
    })
  })
}

async function stopChild (child: Child): Promise<void> {
  if (child.proc.exitCode !== null) return
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => { resolve() }))
  child.proc.send('close')
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** Sends a control message to a child and waits for its answer. */
function ask (child: Child, message: ControlMessage, isAnswer: (reply: unknown) => boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${child.name} did not answer ${JSON.stringify(message)}`)) }, 30_000)
    const onMessage = (reply: unknown): void => {
      if (!isAnswer(reply)) return
      clearTimeout(timer)
      child.proc.off('message', onMessage)
      resolve(reply)
    }
    child.proc.on('message', onMessage)
    child.proc.send(message)
  })
}

async function profiled (child: Child, kind: ProfileKind, to: string, during: () => Promise<void>): Promise<GcStats> {
  await ask(child, { start: kind }, (reply) => reply === 'started')
  await during()
  const reply = await ask(child, { stop: kind, to }, (r) => typeof r === 'object' && r !== null && 'gc' in r) as { gc: GcStats }
  return reply.gc
}

function pin (pid: number, cpu: string): void {
  if (pinning) spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' })
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 (utime, stime) of proc(5); the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) / 100
}

interface Payload { name: string, path: string, method: 'GET' | 'POST', body?: Buffer, expectBytes: number }

const PAYLOADS: Payload[] = [
  { name: 'small JSON response', path: '/api/small', method: 'GET', expectBytes: SMALL_JSON.length },
  { name: '1 MiB response', path: '/api/1mb', method: 'GET', expectBytes: MIB },
  { name: '1 MiB upload', path: '/api/upload', method: 'POST', body: ONE_MIB, expectBytes: `{"received":${MIB}}`.length }
]

interface Sample { rps: number, p50: number, p99: number, cpuUsPerReq: number | undefined }

async function load (url: string, payload: Payload, token: string, seconds: number): Promise<{ result: autocannon.Result }> {
  const result = await autocannon({
    url: url + payload.path,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    method: payload.method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(payload.body ? { 'content-type': 'application/octet-stream' } : {})
    },
    ...(payload.body ? { body: payload.body } : {})
  })
  return { result }
}

async function measure (url: string, payload: Payload, token: string, warmupSeconds: number, seconds: number, cpuPid: number | undefined): Promise<Sample> {
  await load(url, payload, token, warmupSeconds)
  const cpuBefore = cpuPid === undefined ? 0 : cpuSeconds(cpuPid)
  const { result } = await load(url, payload, token, seconds)
  const cpuAfter = cpuPid === undefined ? 0 : cpuSeconds(cpuPid)
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${url}${payload.path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`)
  }
  const total = result.requests.total
  return {
    rps: total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUsPerReq: cpuPid === undefined ? undefined : ((cpuAfter - cpuBefore) * 1e6) / total
  }
}

/** One request per target and payload: the right status and body size before timing anything. */
async function check (url: string, payload: Payload, token: string): Promise<void> {
  const res = await undiciRequest(url + payload.path, {
    method: payload.method,
    headers: { authorization: `Bearer ${token}`, ...(payload.body ? { 'content-type': 'application/octet-stream' } : {}) },
    ...(payload.body ? { body: payload.body } : {})
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  if (res.statusCode !== 200 || body.length !== payload.expectBytes) {
    throw new Error(`${url}${payload.path}: ${res.statusCode}, ${body.length} bytes (expected 200, ${payload.expectBytes}): ${body.subarray(0, 300).toString()}`)
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      profile: { type: 'boolean', default: false },
      // Only the cases whose name contains this text, e.g. --case small
      case: { type: 'string', default: '' }
    }
  })
  const rounds = Math.min(10, Math.max(1, Number(values.rounds)))
  const seconds = Math.min(60, Math.max(1, Number(values.seconds)))
  const warmup = Math.min(30, Math.max(0, Number(values.warmup)))
  pin(process.pid, LOAD_CPU)

  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const kit = new MsalKit(emulator)
  const token = (await kit.signIn()).accessToken
  const upstream = await startChild('upstream', ['upstream'], LOAD_CPU)
  const gatewayConfig = JSON.stringify({
    identity: {
      instance: emulator.url,
      tenantId: DEV_IDS.tenantId,
      clientId: DEV_IDS.gateway.clientId,
      credential: { clientSecret: DEV_IDS.gateway.secret },
      tls: { caFile: emulator.caFile }
    },
    routes: [{ prefix: '/api', upstream: upstream.url, user: { requireScopes: ['access_as_user'], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] } }]
  })
  const children: Child[] = [upstream]
  try {
    const gateway = await startChild('gateway', ['gateway', gatewayConfig], SUT_CPU)
    children.push(gateway)
    const plain = await startChild('reply-from', ['reply-from', upstream.url], SUT_CPU)
    children.push(plain)
    const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length

    const targets = [
      { name: 'gateway', url: gateway.url, pid: gateway.proc.pid },
      { name: 'reply-from', url: plain.url, pid: plain.proc.pid },
      { name: 'direct', url: upstream.url, pid: undefined }
    ]
    const payloads = PAYLOADS.filter((p) => p.name.includes(values.case))
    for (const payload of payloads) for (const target of targets) await check(target.url, payload, token)
    const oboAfterWarm = oboCalls()

    console.error(`node ${process.version}, ${process.platform}/${process.arch}, ${rounds} round(s) of ${warmup} s warm-up + ${seconds} s per case, ${CONNECTIONS} connections, pinning ${pinning ? 'on' : 'off (no taskset)'}`)
    const samples = new Map<string, Sample[]>()
    const started = Date.now()
    for (let round = 0; round < rounds; round++) {
      for (const payload of payloads) {
        for (const target of targets) {
          const direct = target.name === 'direct'
          if (direct) pin(upstream.proc.pid!, SUT_CPU)
          try {
            const sample = await measure(target.url, payload, token, warmup, seconds, direct ? upstream.proc.pid : target.pid)
            const key = `${payload.name}|${target.name}`
            samples.set(key, [...(samples.get(key) ?? []), sample])
            console.error(`round ${round + 1} ${payload.name.padEnd(20)} ${target.name.padEnd(10)} ${Math.round(sample.rps).toString().padStart(7)} req/s  p50 ${sample.p50} ms  p99 ${sample.p99} ms  ${sample.cpuUsPerReq?.toFixed(0) ?? '-'} µs CPU/req`)
          } finally {
            if (direct) pin(upstream.proc.pid!, LOAD_CPU)
          }
        }
      }
    }
    const oboDuringRun = oboCalls() - oboAfterWarm

    const version = (name: string): string => (require(`${name}/package.json`) as { version: string }).version
    console.log(`Node ${process.version}, ${process.platform}/${process.arch}, fastify ${version('fastify')}, @fastify/reply-from ${version('@fastify/reply-from')}, undici ${version('undici')}, autocannon ${version('autocannon')}; ` +
      `${rounds} round(s), each case ${warmup} s warm-up + ${seconds} s measured, ${CONNECTIONS} connections; medians of the rounds; ${Math.round((Date.now() - started) / 1000)} s in all\n`)
    console.log('| case | target | req/s | p50 | p99 | CPU of the server under load per request | req/s ÷ reply-from | req/s ÷ direct |')
    console.log('|---|---|---:|---:|---:|---:|---:|---:|')
    for (const payload of payloads) {
      const rps = (name: string): number => median(samples.get(`${payload.name}|${name}`)!.map((s) => s.rps))
      for (const target of targets) {
        const list = samples.get(`${payload.name}|${target.name}`)!
        const cpu = median(list.map((s) => s.cpuUsPerReq ?? 0))
        console.log(`| ${payload.name} | ${target.name} | ${Math.round(rps(target.name)).toLocaleString('en-US')} | ${median(list.map((s) => s.p50))} ms | ${median(list.map((s) => s.p99))} ms | ${cpu.toFixed(0)} µs | ${(rps(target.name) / rps('reply-from')).toFixed(2)} | ${(rps(target.name) / rps('direct')).toFixed(2)} |`)
      }
    }
    console.log(`\nDownstream token requests (OBO) the gateway made during the timed run: ${oboDuringRun} (0 = every request was a token cache hit)`)
    if (rounds > 1) {
      console.log('\nSpread of req/s across rounds (min–max):')
      for (const [key, list] of samples) console.log(`  ${key.replace('|', ', ')}: ${Math.round(Math.min(...list.map((s) => s.rps)))}–${Math.round(Math.max(...list.map((s) => s.rps)))}`)
      // Gateway and reply-from run back to back in each round, so each round's ratio shares that
      // round's machine state; on a noisy machine it is the steadier figure.
      console.log('\nGateway ÷ reply-from req/s, round by round (median; min–max):')
      for (const payload of payloads) {
        const gateway = samples.get(`${payload.name}|gateway`)!
        const plainProxy = samples.get(`${payload.name}|reply-from`)!
        const ratios = gateway.map((s, i) => s.rps / plainProxy[i]!.rps)
        console.log(`  ${payload.name}: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}; ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`)
      }
    }

    if (values.profile) {
      const summaries: ProfileSummary[] = []
      for (const target of targets.slice(0, 2)) {
        const child = children.find((c) => c.name === target.name)!
        const dir = mkdtempSync(join(tmpdir(), `obo-prof-${target.name}-`))
        await load(target.url, PAYLOADS[0]!, token, warmup)
        let result: autocannon.Result | undefined
        const gcStats = await profiled(child, 'cpu', join(dir, 'small-json.cpuprofile'), async () => { result = (await load(target.url, PAYLOADS[0]!, token, seconds)).result })
        const requests = result!.requests.total
        const summary = summariseProfile(target.name, join(dir, 'small-json.cpuprofile'), requests)
        summaries.push(summary)
        console.log(`\n### ${target.name} under the V8 sampling profiler (${PROFILE_SAMPLING_US} µs interval), small JSON, ${seconds} s: ` +
          `${Math.round(requests / result!.duration)} req/s, ${summary.busyUsPerRequest.toFixed(0)} µs busy CPU per request\nprofile: ${join(dir, 'small-json.cpuprofile')}`)
        console.log(`garbage collection while profiling: ${Object.entries(gcStats).map(([kind, { count, ms }]) => `${kind} ${count}× ${ms.toFixed(0)} ms`).join(', ')}`)
        printSummary(summary)
        let allocRequests = 0
        await profiled(child, 'alloc', join(dir, 'small-json.heapprofile'), async () => { allocRequests = (await load(target.url, PAYLOADS[0]!, token, Math.min(seconds, 4))).result.requests.total })
        printAllocations(join(dir, 'small-json.heapprofile'), allocRequests)
      }
      printDifference(summaries[0]!, summaries[1]!)
    }
  } finally {
    for (const child of children.reverse()) await stopChild(child)
    await kit.close()
    await emulator.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Profile summary

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

interface ProfileSummary {
  name: string
  busyUsPerRequest: number
  /** µs per request. */
  self: Map<string, number>
  area: Map<string, number>
  inclusive: Map<string, number>
  callers: Map<string, Map<string, number>>
}

/** Per request: self time by function and by where the code lives, inclusive time of project code, callers. */
function summariseProfile (name: string, file: string, requests: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const add = (map: Map<string, number>, key: string, us: number): void => { map.set(key, (map.get(key) ?? 0) + us / requests) }
  const summary: ProfileSummary = { name, busyUsPerRequest: 0, self: new Map(), area: new Map(), inclusive: new Map(), callers: new Map() }
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0
    const leaf = byId.get(profile.samples[i]!)!
    if (leaf.callFrame.functionName === '(idle)') continue
    summary.busyUsPerRequest += us / requests
    const key = frameKey(leaf.callFrame)
    add(summary.self, key, us)
    add(summary.area, areaOf(leaf.callFrame), us)
    // The nearest caller that is not node core or the VM: who asked for this work.
    let up = parent.get(leaf.id)
    while (up !== undefined && /^(node core|native)/.test(areaOf(byId.get(up)!.callFrame))) up = parent.get(up)
    const callers = summary.callers.get(key) ?? new Map<string, number>()
    add(callers, up === undefined ? '(root)' : frameKey(byId.get(up)!.callFrame), us)
    summary.callers.set(key, callers)
    const seen = new Set<string>()
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame
      if (areaOf(frame) !== PROJECT) continue
      const k = frameKey(frame)
      if (seen.has(k)) continue
      seen.add(k)
      add(summary.inclusive, k, us)
    }
  }
  return summary
}

const top = (map: Map<string, number>, n: number): Array<[string, number]> => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
const us = (value: number): string => `${value.toFixed(1).padStart(6)} µs`

function printSummary (s: ProfileSummary): void {
  const share = (value: number): string => `${((value / s.busyUsPerRequest) * 100).toFixed(1).padStart(5)}%`
  console.log('self time by area, per request (top 10):')
  for (const [area, value] of top(s.area, 10)) console.log(`  ${us(value)} ${share(value)}  ${area}`)
  console.log('top 25 functions by self time, per request:')
  for (const [key, value] of top(s.self, 25)) console.log(`  ${us(value)} ${share(value)}  ${key}`)
  if (s.inclusive.size > 0) {
    console.log('project code by inclusive time, per request (top 20):')
    for (const [key, value] of top(s.inclusive, 20)) console.log(`  ${us(value)} ${share(value)}  ${key}`)
  }
}

/** Where the gateway's extra CPU per request goes, function by function, against the plain proxy. */
function printDifference (gateway: ProfileSummary, plain: ProfileSummary): void {
  console.log(`\n### ${gateway.name} minus ${plain.name}: ${us(gateway.busyUsPerRequest - plain.busyUsPerRequest).trim()} more busy CPU per request`)
  const diff = (a: Map<string, number>, b: Map<string, number>): Map<string, number> =>
    new Map([...new Set([...a.keys(), ...b.keys()])].map((k) => [k, (a.get(k) ?? 0) - (b.get(k) ?? 0)]))
  console.log('by area (largest increases):')
  for (const [area, value] of top(diff(gateway.area, plain.area), 10)) console.log(`  ${us(value)}  ${area}`)
  console.log('by function, self time (largest increases), with the gateway\'s nearest non-core callers:')
  for (const [key, value] of top(diff(gateway.self, plain.self), 25)) {
    const callers = top(gateway.callers.get(key) ?? new Map<string, number>(), 3).map(([c, v]) => `${c} ${v.toFixed(1)}`).join('; ')
    console.log(`  ${us(value)}  ${key}${callers === '' ? '' : `   <- ${callers}`}`)
  }
}

interface HeapNode { callFrame: ProfileNode['callFrame'], selfSize: number, children: HeapNode[] }

/** Bytes allocated per request, by allocating function (sampled), and by the nearest project or package caller. */
function printAllocations (file: string, requests: number): void {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }
  const self = new Map<string, number>()
  let total = 0
  const walk = (node: HeapNode): void => {
    if (node.selfSize > 0) {
      const key = frameKey(node.callFrame)
      self.set(key, (self.get(key) ?? 0) + node.selfSize / requests)
      total += node.selfSize / requests
    }
    for (const child of node.children) walk(child)
  }
  walk(head)
  console.log(`allocation (sampling heap profiler, objects collected since included): ${Math.round(total).toLocaleString('en-US')} bytes per request; top 15 allocating functions:`)
  for (const [key, bytes] of top(self, 15)) console.log(`  ${Math.round(bytes).toString().padStart(6)} B  ${key}`)
}

function frameKey (frame: ProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)'
  if (frame.url === '') return name
  // Line numbers of files tsx compiled are not the source's: name the file only.
  const line = areaOf(frame) === PROJECT ? '' : `:${frame.lineNumber + 1}`
  return `${name} ${shortUrl(frame.url)}${line}`
}

const PROJECT = 'project code (src, plugins, routes, bench)'

function shortUrl (url: string): string {
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length)
  const at = url.indexOf('/work/main/')
  return at === -1 ? url.replace(/^file:\/\//, '') : url.slice(at + '/work/main/'.length)
}

function areaOf (frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame
  if (url === '') return functionName === '(garbage collector)' ? 'GC' : `native ${functionName}`
  if (url.startsWith('node:')) return 'node core (http, net, streams, events)'
  if (url.startsWith('wasm:')) return 'undici (llhttp, wasm)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  return PROJECT
}

// ---------------------------------------------------------------------------------------------

const [role, arg] = process.argv.slice(2)
const run = role === 'upstream'
  ? runUpstream()
  : role === 'reply-from'
    ? runReplyFrom(arg ?? '')
    : role === 'gateway'
      ? runGateway(arg ?? '')
      : main()
run.catch((err: unknown) => { console.error(err); process.exit(1) })
