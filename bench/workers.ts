/**
 * All cores (issue #15): the gateway's throughput with `server.workers: 2` against `server.workers: 1`
 * on the same machine, small JSON through a real token (a validation and token cache hit every time).
 *
 *   npm run bench:workers                      (3 rounds, 2 s warm-up + 8 s per case)
 *   npm run bench:workers -- --rounds 5 --seconds 10
 *
 * Unlike bench:proxy nothing is pinned: the point is what a second worker buys on a 2-core machine
 * where the load generator (autocannon, one thread, in this process with the idle emulator) and the
 * upstream (its own process) run on the same two cores. So the ratio counts the load generator: it
 * takes CPU the workers would otherwise get. The CPU each party used over the window is read from
 * /proc and printed beside the throughput. Each gateway is the real CLI from dist/ (`npm start`'s
 * JavaScript) with a config file; LOG_LEVEL=warn, so no line per request, and no overload shedding
 * (a machine this busy lags past its 1 s default at start). Both gateways run for the
 * whole bench; one is loaded at a time, alternating within each round.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { startEmulator } from '../src/emulator'
import { devGatewayIdentity } from '../src/dev/dev-identity'
import { freePort } from '../src/net/free-port'
import { startNodeServer, type Server } from './lib/children'
import { cpuSeconds, LOAD_CPU } from './lib/cpu'
import { check, CONNECTIONS, load } from './lib/load'
import { PAYLOADS } from './lib/payloads'
import { median } from './lib/report'
import { HOST } from './lib/servers'
import { SeedClients } from './lib/sign-in'
import { SAMPLE_USER_ROUTE } from './lib/sample-route'

const CLI = resolve(__dirname, '../dist/src/cli.js')
const START_TIMEOUT_MS = 60_000

interface Gateway { workers: number, url: string, proc: ChildProcess, stop: () => Promise<void> }

interface Window { rps: number, p99: number, gatewayCores: number, primaryCores: number, loadCores: number, upstreamCores: number, oboCalls: number }

function options (): { rounds: number, seconds: number, warmup: number } {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, warmup: { type: 'string', default: '2' } }
  })
  return {
    rounds: Math.min(10, Math.max(1, Number(values.rounds))),
    seconds: Math.min(60, Math.max(1, Number(values.seconds))),
    warmup: Math.min(30, Math.max(0, Number(values.warmup)))
  }
}

/** A process and everything it started (the primary and its workers), from /proc. */
function family (pid: number): number[] {
  const parents = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)])
    } catch {
      // The process ended between readdir and read.
    }
  }
  const all = [pid]
  for (let i = 0; i < all.length; i++) all.push(...(parents.get(all[i]!) ?? []))
  return all
}

function familyCpu (pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)
}

async function startGateway (dir: string, workers: number, config: Record<string, unknown>): Promise<Gateway> {
  const [port, adminPort] = [await freePort(), await freePort()]
  const file = join(dir, `workers-${workers}.json`)
  writeFileSync(file, JSON.stringify({ ...config, server: { host: HOST, port, adminPort, workers, overload: { maxEventLoopDelayMs: 0 } } }))
  const proc = spawn(process.execPath, ['--enable-source-maps', CLI, '--config', file], { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => { resolve() }))
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the gateway with ${workers} worker(s) exited (${proc.exitCode})`)
    if (Date.now() > deadline) throw new Error(`the gateway with ${workers} worker(s) was not ready in time`)
    const ready = await request(`http://${HOST}:${adminPort}/readyz`).then(async (res) => { await res.body.dump(); return res.statusCode === 200 }, () => false)
    if (ready) break
    await sleep(200)
  }
  return {
    workers,
    url: `http://${HOST}:${port}`,
    proc,
    stop: async () => {
      if (proc.exitCode !== null) return
      proc.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000).then(() => { proc.kill('SIGKILL') })])
    }
  }
}

async function measure (gateway: Gateway, upstream: Server, token: string, warmup: number, seconds: number, oboCalls: () => number): Promise<Window> {
  const small = PAYLOADS[0]!
  if (warmup > 0) await load(gateway.url, small, token, warmup)
  const pids = family(gateway.proc.pid!)
  if (pids.length < 1 + (gateway.workers > 1 ? gateway.workers : 0)) throw new Error(`expected ${gateway.workers} workers, found processes ${pids.join(', ')}`)
  const before = { gateway: familyCpu(pids), primary: cpuSeconds(gateway.proc.pid!), upstream: cpuSeconds(upstream.pid), self: process.cpuUsage(), obo: oboCalls() }
  const wallBefore = process.hrtime.bigint()
  const result = await load(gateway.url, small, token, seconds)
  const wall = Number(process.hrtime.bigint() - wallBefore) / 1e9
  const self = process.cpuUsage(before.self)
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${gateway.workers} worker(s): ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`)
  }
  return {
    rps: result.requests.total / result.duration,
    p99: result.latency.p99,
    gatewayCores: (familyCpu(pids) - before.gateway) / wall,
    primaryCores: (cpuSeconds(gateway.proc.pid!) - before.primary) / wall,
    upstreamCores: (cpuSeconds(upstream.pid) - before.upstream) / wall,
    loadCores: (self.user + self.system) / 1e6 / wall,
    oboCalls: oboCalls() - before.obo
  }
}

/** The gateway's CPU time per request (all its processes): the figure a busy machine distorts least. */
function cpuUs (w: Window): string {
  return (w.gatewayCores / w.rps * 1e6).toFixed(0)
}

function line (round: number, workers: number, w: Window): string {
  return `round ${round}  ${workers} worker${workers === 1 ? ' ' : 's'}  ${Math.round(w.rps).toString().padStart(6)} req/s  p99 ${w.p99} ms  ` +
    `CPU: gateway ${w.gatewayCores.toFixed(2)} (${cpuUs(w)} µs/req${workers > 1 ? `, primary ${w.primaryCores.toFixed(2)}` : ''}), load generator ${w.loadCores.toFixed(2)}, upstream ${w.upstreamCores.toFixed(2)} cores`
}

async function main (): Promise<void> {
  const opts = options()
  const dir = mkdtempSync(join(tmpdir(), 'obo-bench-workers-'))
  const emulator = await startEmulator({ dataDir: dir })
  const clients = new SeedClients(emulator)
  const stops: Array<() => Promise<void>> = []
  try {
    const token = await clients.aliceToken()
    const upstream = await startNodeServer('upstream', 'upstream', [], LOAD_CPU)
    stops.push(upstream.stop)
    const config = {
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/api', upstream: upstream.url, user: SAMPLE_USER_ROUTE }]
    }
    const gateways: Gateway[] = []
    for (const workers of [1, 2]) {
      const gateway = await startGateway(dir, workers, config)
      stops.push(gateway.stop)
      gateways.push(gateway)
      await check(gateway.url, PAYLOADS[0]!, token)
      // A connection each, so that every worker (handed connections in turn) fills its own L1 now.
      for (let i = 0; i < 4 * workers; i++) {
        const res = await request(`${gateway.url}${PAYLOADS[0]!.path}`, { reset: true, headers: { authorization: `Bearer ${token}` } })
        await res.body.dump()
      }
    }
    const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length

    console.error(`node ${process.version}, ${process.platform}/${process.arch}, ${opts.rounds} round(s) of ${opts.warmup} s warm-up + ${opts.seconds} s, ${CONNECTIONS} connections, nothing pinned`)
    const windows = new Map<number, Window[]>([[1, []], [2, []]])
    const started = Date.now()
    for (let round = 1; round <= opts.rounds; round++) {
      // Alternating which goes first spreads a trend in the machine's load over both.
      for (const gateway of round % 2 === 1 ? gateways : [...gateways].reverse()) {
        const w = await measure(gateway, upstream, token, opts.warmup, opts.seconds, oboCalls)
        windows.get(gateway.workers)!.push(w)
        console.error(line(round, gateway.workers, w))
      }
    }
    const one = windows.get(1)!
    const two = windows.get(2)!
    const ratios = two.map((w, i) => w.rps / one[i]!.rps)
    const med = (list: Window[], pick: (w: Window) => number): string => median(list.map(pick)).toFixed(2)
    console.log(`Node ${process.version}, ${process.platform}/${process.arch}, autocannon ${(require('autocannon/package.json') as { version: string }).version}, ` +
      `${CONNECTIONS} connections, small JSON, ${opts.rounds} round(s) of ${opts.warmup} s warm-up + ${opts.seconds} s per case, nothing pinned; ${Math.round((Date.now() - started) / 1000)} s in all\n`)
    console.log('| workers | req/s (median) | p99 (median) | gateway CPU, cores (primary) | gateway CPU per request | load generator CPU, cores | upstream CPU, cores |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|')
    for (const [workers, list] of windows) {
      console.log(`| ${workers} | ${Math.round(median(list.map((w) => w.rps))).toLocaleString('en-US')} | ${median(list.map((w) => w.p99))} ms | ${med(list, (w) => w.gatewayCores)}${workers > 1 ? ` (${med(list, (w) => w.primaryCores)})` : ''} | ${median(list.map((w) => w.gatewayCores / w.rps * 1e6)).toFixed(0)} µs | ${med(list, (w) => w.loadCores)} | ${med(list, (w) => w.upstreamCores)} |`)
    }
    console.log(`\n2 workers ÷ 1 worker, req/s round by round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}; ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`)
    console.log(`Downstream token requests (OBO) in the measured windows: ${[...one, ...two].reduce((n, w) => n + w.oboCalls, 0)} (0 = every request was a token cache hit; each worker has its own L1 and no Redis here)`)
  } finally {
    for (const stop of stops.reverse()) await stop()
    await clients.close()
    await emulator.close()
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
