/**
 * Latency the gateway adds (issue #15): p50/p99 of small-JSON requests at a fixed rate — half of
 * what reply-from sustains here, measured first in the same run — through the gateway, through a
 * plain @fastify/reply-from proxy and to the upstream directly. Open loop: requests leave on a
 * timer-kept schedule whatever the answers do, and each latency counts from its scheduled time, so a
 * stall shows up in the percentiles instead of slowing the load down. Microsecond resolution.
 * Every round printed; added = gateway − direct of the same round. Within a round the three
 * targets take turns: each one's seconds are cut into --slices slices, taken in alternating order
 * (direct, reply-from, gateway, then gateway, reply-from, direct, ...), and a target's percentiles are
 * over all of its slices' requests together.
 *
 *   npm run bench:latency [-- --rounds 5 --seconds 10 --slices 5 --rate 2000]
 *
 * Processes and cores (the machine has 2), as in bench:proxy: this process (the load generator and
 * the emulator, idle once the gateway's caches are warm) and the upstream stay on CPU 0; the proxy
 * under test, and only it, is moved to CPU 1 while it is measured. The upstream stays on CPU 0 in
 * the direct case too, so that it runs under the same conditions in all three cases and the
 * difference is the hop alone. Each round also prints what stalled each process meanwhile: how late
 * the driver sent, and every process's event-loop delay and GC pauses (bench/lib/loop-watch.ts).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { startEmulator } from '../src/emulator'
import { devGatewayIdentity } from '../src/dev/dev-identity'
import { startNodeServer, watched, type NodeServer } from './lib/children'
import { aloneOnSutCpu, coreSeconds, cpuSeconds, LOAD_CPU, pin, pinning, SUT_CPU } from './lib/cpu'
import { check, load } from './lib/load'
import { combineLoopStats, watchLoop, type LoopStats } from './lib/loop-watch'
import { openLoop, summarise, type OpenLoopResult, type OpenLoopRun } from './lib/open-loop'
import { PAYLOADS } from './lib/payloads'
import { median } from './lib/report'
import { loadLine } from './lib/rounds'
import { SeedClients } from './lib/sign-in'
import { SAMPLE_USER_ROUTE } from './lib/sample-route'

// --rate fixes the rate instead of measuring reply-from's saturation: on a shared machine that
// saturation moves with the other work, and two runs are only comparable at one rate.
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '10' }, slices: { type: 'string', default: '5' }, rate: { type: 'string' } } })
const ROUNDS = Number(args.rounds)
const SECONDS = Number(args.seconds)
const SLICES = Math.max(1, Math.round(Number(args.slices)))
const WARMUP_SECONDS = 1
const SMALL = PAYLOADS[0]!

interface Window extends OpenLoopResult {
  driver: LoopStats
  upstream: LoopStats
  /** The proxy under test; none in the direct case. */
  proxy?: LoopStats
  /** CPU µs per request of the proxy, alone on SUT_CPU, and its share of that core. */
  cpu?: { usPerRequest: number, share: number }
  /** Shares of CPU 0 the driver and the upstream used. */
  load: { driver: number, upstream: number }
  /** Shares of each core taken by processes not this run's, and by the hypervisor (steal). */
  others: { load: number, sut: number, stealLoad: number, stealSut: number }
  /** Milliseconds the hypervisor took from each core (in 10 ms ticks): one stolen slice is a stall. */
  stolenMs: { load: number, sut: number }
}

/** CPU seconds of this run's processes: the driver, and each server. */
function ours (servers: NodeServer[]): { driver: number, each: Map<NodeServer, number> } {
  const { user, system } = process.cpuUsage()
  return { driver: (user + system) / 1e6, each: new Map(servers.map((s) => [s, cpuSeconds(s.pid)])) }
}

/** One slice of a target's window: the raw figures, added up over the slices by `windowOf`. */
interface Slice {
  run: OpenLoopRun
  driver: LoopStats
  upstream: LoopStats
  proxy?: LoopStats
  wall: number
  /** CPU seconds used meanwhile: by the driver, the upstream, the proxy, all this run's processes on CPU 0. */
  used: { driver: number, upstream: number, proxy: number, onLoad: number }
  /** Busy and stolen seconds of each core meanwhile, anyone's. */
  cores: { load: number, sut: number, stealLoad: number, stealSut: number }
}

/**
 * One slice at `rate` against `pool`'s server, with the event loops of the driver, the upstream and
 * the proxy watched, and the cores' use read around it.
 */
async function measureSlice (pool: Pool, token: string, rate: number, seconds: number, servers: NodeServer[], upstream: NodeServer, proxy: NodeServer | undefined): Promise<Slice> {
  const headers = { authorization: `Bearer ${token}` }
  const before = { ours: ours(servers), load: coreSeconds(LOAD_CPU), sut: coreSeconds(SUT_CPU), wall: process.hrtime.bigint() }
  const stopDriver = watchLoop()
  const run = async (): Promise<OpenLoopRun> => await openLoop(pool, SMALL.path, headers, rate, seconds)
  const { result: inner, loop: upstreamLoop } = await watched(upstream, async () => proxy === undefined ? { result: await run(), loop: undefined } : await watched(proxy, run))
  const driver = stopDriver()
  const wall = Number(process.hrtime.bigint() - before.wall) / 1e9
  const after = { ours: ours(servers), load: coreSeconds(LOAD_CPU), sut: coreSeconds(SUT_CPU) }
  const used = (s: NodeServer): number => after.ours.each.get(s)! - before.ours.each.get(s)!
  const driverSeconds = after.ours.driver - before.ours.driver
  return {
    run: inner.result,
    driver,
    upstream: upstreamLoop,
    ...(inner.loop === undefined ? {} : { proxy: inner.loop }),
    wall,
    used: {
      driver: driverSeconds,
      upstream: used(upstream),
      proxy: proxy === undefined ? 0 : used(proxy),
      onLoad: driverSeconds + servers.filter((s) => s !== proxy).reduce((sum, s) => sum + used(s), 0)
    },
    cores: {
      load: after.load.busy - before.load.busy,
      sut: after.sut.busy - before.sut.busy,
      stealLoad: after.load.steal - before.load.steal,
      stealSut: after.sut.steal - before.sut.steal
    }
  }
}

/** A target's slices of one round as its window: every request's latency together, times added up. */
function windowOf (slices: Slice[], withProxy: boolean): Window {
  const sum = (pick: (s: Slice) => number): number => slices.reduce((total, s) => total + pick(s), 0)
  const wall = sum((s) => s.wall)
  const window: Window = {
    ...summarise(slices.map((s) => s.run)),
    driver: combineLoopStats(slices.map((s) => s.driver)),
    upstream: combineLoopStats(slices.map((s) => s.upstream)),
    load: { driver: sum((s) => s.used.driver) / wall, upstream: sum((s) => s.used.upstream) / wall },
    others: {
      load: Math.max(0, sum((s) => s.cores.load) - sum((s) => s.used.onLoad)) / wall,
      sut: Math.max(0, sum((s) => s.cores.sut) - sum((s) => s.used.proxy)) / wall,
      stealLoad: sum((s) => s.cores.stealLoad) / wall,
      stealSut: sum((s) => s.cores.stealSut) / wall
    },
    stolenMs: { load: sum((s) => s.cores.stealLoad) * 1000, sut: sum((s) => s.cores.stealSut) * 1000 }
  }
  if (!withProxy) return window
  const proxySeconds = sum((s) => s.used.proxy)
  return { ...window, proxy: combineLoopStats(slices.map((s) => s.proxy!)), cpu: { usPerRequest: proxySeconds * 1e6 / sum((s) => s.run.latency.length), share: proxySeconds / wall } }
}

const ms = (v: number): string => v.toFixed(2)
/** A window in which other processes or the hypervisor took more than this share of a core is marked disturbed. */
const DISTURBED = 0.05
const undisturbed = (w: Window): boolean => Math.max(w.others.load, w.others.sut, w.others.stealLoad, w.others.stealSut) <= DISTURBED
const pct = (share: number): string => `${(share * 100).toFixed(0)}%`
const stalls = (s: LoopStats): string => `${ms(s.delay.p99)} / ${ms(s.delay.max)} ms; ${s.gc.count}× ${ms(s.gc.max)} ms${s.gc.major > 0 ? ` (major ${ms(s.gc.major)}, ${s.gc.compactions} mark-compact${s.gc.compactions === 1 ? '' : 's'})` : ''}; heap ${s.heapMb.toFixed(0)} MB`

async function main (): Promise<void> {
  pin(process.pid, LOAD_CPU)
  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const clients = new SeedClients(emulator)
  const servers: NodeServer[] = []
  try {
    const token = await clients.aliceToken()
    const upstream = await startNodeServer('upstream', 'upstream', [], LOAD_CPU)
    servers.push(upstream)
    const config = JSON.stringify({
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/api', upstream: upstream.url, user: SAMPLE_USER_ROUTE }]
    })
    const gateway = await startNodeServer('gateway', 'gateway', [config], LOAD_CPU)
    const plain = await startNodeServer('reply-from', 'reply-from', [upstream.url], LOAD_CPU)
    servers.push(gateway, plain)
    const targets: Array<{ name: 'direct' | 'reply-from' | 'gateway', url: string, proxy?: NodeServer }> = [
      { name: 'direct', url: upstream.url },
      { name: 'reply-from', url: plain.url, proxy: plain },
      { name: 'gateway', url: gateway.url, proxy: gateway }
    ]
    for (const { url } of targets) await check(url, SMALL, token)

    let rate = Number(args.rate ?? 0)
    let origin = 'given with --rate'
    if (rate === 0) {
      const saturation = await aloneOnSutCpu(plain.pid, async () => {
        await load(plain.url, SMALL, token, 2)
        return await load(plain.url, SMALL, token, 5)
      })
      const saturated = Math.round(saturation.requests.total / saturation.duration)
      rate = Math.max(10, Math.round(saturated / 2))
      origin = `half of reply-from's ${saturated} req/s saturation (autocannon, 50 connections, 5 s, reply-from alone on its core)`
    }
    console.log(`node ${process.version}; ${pinning ? `pinning on: the proxy under test alone on CPU ${SUT_CPU} while measured; this driver (load generator, emulator) and the upstream on CPU ${LOAD_CPU}, the upstream also in the direct case` : 'pinning off (no taskset)'}; ` +
      `fixed rate ${rate} req/s (${origin}), timer-driven, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per target in ${SLICES} slices taken in turns, ${ROUNDS} rounds, small JSON; ${loadLine()} at start`)
    const tokenRequests = (): number => emulator.records.tokenRequests().length
    const tokenRequestsBefore = tokenRequests()
    const rounds: Array<Record<string, Window>> = []
    for (let round = 1; round <= ROUNDS; round++) {
      const pools = new Map(targets.map((t) => [t.name, new Pool(t.url, { connections: 256, pipelining: 1 })]))
      const slices = new Map<string, Slice[]>(targets.map((t) => [t.name, []]))
      const onItsCore = async <T>(target: typeof targets[number], during: () => Promise<T>): Promise<T> =>
        target.proxy === undefined ? await during() : await aloneOnSutCpu(target.proxy.pid, during)
      try {
        for (const target of targets) {
          await onItsCore(target, async () => { await openLoop(pools.get(target.name)!, SMALL.path, { authorization: `Bearer ${token}` }, rate, WARMUP_SECONDS) })
        }
        // The targets take turns, slice by slice, in alternating order: a stall of the driver or the
        // upstream (whose p99 is part of every target's) falls on all three alike, so the
        // difference of their p99s is the hop's, not the luck of which one had the bad seconds.
        for (let slice = 0; slice < SLICES; slice++) {
          for (const target of slice % 2 === 0 ? targets : [...targets].reverse()) {
            slices.get(target.name)!.push(await onItsCore(target, async () => await measureSlice(pools.get(target.name)!, token, rate, SECONDS / SLICES, servers, upstream, target.proxy)))
          }
        }
      } finally {
        for (const pool of pools.values()) await pool.close()
      }
      rounds.push(Object.fromEntries(targets.map((t) => [t.name, windowOf(slices.get(t.name)!, t.proxy !== undefined)])))
      console.error(`round ${round} done; ${loadLine()}`)
    }
    const tokenRequestsDuring = tokenRequests() - tokenRequestsBefore

    console.log('\n| round | direct p50 / p99 | reply-from p50 / p99 | gateway p50 / p99 | gateway added p50 / p99 | reply-from added p50 / p99 |')
    console.log('|---:|---:|---:|---:|---:|---:|')
    const addedP50: number[] = []
    const addedP99: number[] = []
    const plainP99: number[] = []
    for (const [index, r] of rounds.entries()) {
      const { direct, gateway: g, 'reply-from': p } = r as Record<'direct' | 'gateway' | 'reply-from', Window>
      addedP50.push(g.latency.p50 - direct.latency.p50)
      addedP99.push(g.latency.p99 - direct.latency.p99)
      plainP99.push(p.latency.p99 - direct.latency.p99)
      const over = Object.entries(r).filter(([, w]) => w.overOneSecond > 0).map(([k, w]) => `${k} ${w.overOneSecond} over 1 s`).join(', ')
      const pair = (w: Window): string => `${ms(w.latency.p50)} / ${ms(w.latency.p99)} ms`
      console.log(`| ${index + 1} | ${pair(direct)} | ${pair(p)} | ${pair(g)} | ${ms(g.latency.p50 - direct.latency.p50)} / ${ms(g.latency.p99 - direct.latency.p99)} ms | ` +
        `${ms(p.latency.p50 - direct.latency.p50)} / ${ms(p.latency.p99 - direct.latency.p99)} ms |${over === '' ? '' : ` ${over}`}`)
    }
    console.log(`\ngateway added, medians of the rounds: p50 ${ms(median(addedP50))} ms, p99 ${ms(median(addedP99))} ms (goal p99 ≤ 2 ms); reply-from added p99 median ${ms(median(plainP99))} ms; ${loadLine()} at end`)
    console.log(`token requests the emulator answered during the rounds: ${tokenRequestsDuring} (0 = every request through the gateway was a token cache hit)`)
    const quiet = rounds.map((r, i) => [r, i] as const).filter(([r]) => Object.values(r).every(undisturbed)).map(([, i]) => i)
    console.log(`rounds in which no window had other processes above ${pct(DISTURBED)} of either core or steal above ${pct(DISTURBED)}: ${quiet.length === 0 ? 'none' : `${quiet.map((i) => i + 1).join(', ')}; gateway added p99 in those ${quiet.map((i) => ms(addedP99[i]!)).join(', ')} ms, reply-from added p99 ${quiet.map((i) => ms(plainP99[i]!)).join(', ')} ms`}`)

    console.log(`\nWhat each window was made of: worst latency; p99 from the actual send (without the driver's lateness); how late the driver sent (p99 / max); each process's event-loop delay (p99 / max of a 1 ms timer's lateness) and GC pauses (count × longest, and the longest that was not a scavenge) and heap in use; the driver's and the upstream's shares of CPU ${LOAD_CPU}; the proxy's CPU per request and share of its core; the share of each core other processes (not this run's) took, and the time the hypervisor took from each (steal).\n`)
    console.log(`| round | target | latency max | p99 from send | sends late p99 / max | driver loop; GC | upstream loop; GC | proxy loop; GC | driver / upstream core share | proxy CPU / request, core share | others on CPU ${LOAD_CPU} / ${SUT_CPU} | stolen from CPU ${LOAD_CPU} / ${SUT_CPU} |`)
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const [index, r] of rounds.entries()) {
      for (const [name, w] of Object.entries(r)) {
        console.log(`| ${index + 1} | ${name} | ${ms(w.latency.max)} ms | ${ms(w.service.p99)} ms | ${ms(w.lateness.p99)} / ${ms(w.lateness.max)} ms | ${stalls(w.driver)} | ${stalls(w.upstream)} | ` +
          `${w.proxy === undefined ? '–' : stalls(w.proxy)} | ${pct(w.load.driver)} / ${pct(w.load.upstream)} | ${w.cpu === undefined ? '–' : `${w.cpu.usPerRequest.toFixed(0)} µs, ${pct(w.cpu.share)}`} | ${pct(w.others.load)} / ${pct(w.others.sut)} | ${w.stolenMs.load.toFixed(0)} / ${w.stolenMs.sut.toFixed(0)} ms |`)
      }
    }
  } finally {
    for (const server of servers.reverse()) await server.stop()
    await clients.close()
    await emulator.close()
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
